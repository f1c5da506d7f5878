"""What customers write, in the languages besides English that ``app.classify`` reads.

Regular-expression sources only, per intent and per language: ``app.classify`` compiles
them, and matches them against text that is NFKC-normalised, case-folded by the
``re.I`` flag and stripped of accents (``fold``), so each source is written once, with
or without its accents (``"devolución"`` and ``"devolucion"`` both match either).
Latin-script phrases sit between word boundaries; Chinese and Japanese have no spaces
between words, so theirs are plain substrings.

Every source must run in linear time: literal phrases, alternations and bounded
repetition (``{0,3}``) only, never an unbounded repeat next to or inside another.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "DAMAGE",
    "DAMAGE_NEGATORS",
    "INTENTS",
    "NOT_A_BOT",
    "NOT_THE_ITEM",
    "NOT_WORKING",
    "OTHERS_BROKE_IT",
    "WEAK_ORDER_STATUS",
    "WISH_NEGATORS",
    "WISH_NEGATORS_AFTER",
    "fold",
]

_COMBINING_ACCENTS = re.compile("[\u0300-\u036f]")


def fold(text: str) -> str:
    """``text`` without accents on Latin letters (é -> e, ñ -> n, ç -> c) and with ß as ss.

    Only the combining diacritics block goes: the voicing marks of Japanese kana are
    other characters, so が stays が. Applied both to the sources below and to the
    customer's text, so the two always agree.
    """
    decomposed = unicodedata.normalize("NFKD", text.replace("ß", "ss").replace("ẞ", "SS"))
    return unicodedata.normalize("NFC", _COMBINING_ACCENTS.sub("", decomposed))


# A few words of one clause, for phrases with an object in the middle.
_W = r"(?:[^\s.,;:!?]+\s+)"

# The languages each table covers: es, pt, fr, de, nl (Latin script), zh, ja.
INTENTS: dict[str, dict[str, tuple[str, ...]]] = {
    "human_request": {
        "es": (
            r"\b(?:hablar|habla|ablar|platicar|comunicarme|conversar)\s+con\s+(?:(?:un|una|el|la"
            r"|algun|alguna)\s+)?(?:persona|humano|ser\s+humano|agente|asesora?|operadora?"
            r"|representante|encargad[oa]|supervisora?|gerente|alguien|emplead[oa]|responsable"
            r"|ejecutiv[oa])\b",
            r"\b(?:pasa|pasame|pasenme|paseme|comunicame|comuniqueme|comuniquenme|transfiereme"
            r"|transfierame|me\s+(?:pasan|pasas|comunican|comunicas|transfieren|pueden\s+pasar"
            r"|puede\s+pasar))\s+(?:con|a)\s+(?:un|una|el|la|alguien|algun|alguna)\b",
            r"\bpersona\s+(?:real|de\s+verdad|humana)\b|\bde\s+carne\s+y\s+hueso\b",
            r"\b(?:un|una|algun|otro)\s+(?:humano|ser\s+humano)\b",
            r"\b(?:agente|asesor|operador)\s+(?:real|humano|de\s+verdad)\b",
            r"\batencion\s+(?:humana|personal|personalizada)\b",
            r"\b(?:me\s+)?(?:puede|pueden|podria|podrian)\s+atender\s+(?:un|una|alguien|algun)\b"
            r"|\bque\s+me\s+atienda\s+(?:un|una|el|la|alguien|algun|una\s+persona)\b",
            r"\b(?:con|llamar\s+a|pasar\s+con)\s+(?:el|la|su|tu|un|una)\s+(?:jefe|jefa|encargad[oa]"
            r"|gerente|supervisora?|responsable)\b",
            r"\bque\s+me\s+llame\s+(?:alguien|una\s+persona|un\s+agente|un\s+asesor)\b"
            r"|\b(?:llamenme|llameme|me\s+(?:pueden|puede|podrian|podria)\s+llamar)\b",
        ),
        "pt": (
            r"\b(?:falar|conversar)\s+com\s+(?:(?:um|uma|o|a|algum|alguma)\s+)?(?:atendente"
            r"|pessoa|humano|ser\s+humano|agente|operadora?|gerente|supervisora?|alguem"
            r"|funcionari[oa]|responsavel|consultora?)\b",
            r"\b(?:pessoa|atendente|atendimento|agente)\s+(?:de\s+verdade|real|humano|humana)\b",
            r"\b(?:me\s+)?(?:passa|passe|transfere|transfira|encaminha|encaminhe)\s+(?:(?:pra|para)"
            r"\s+)?(?:(?:um|uma|o|a)\s+)?(?:atendente|pessoa|humano|agente|operadora?|alguem)\b",
            r"\b(?:atendid[oa])\s+por\s+(?:um|uma|alguem)\b",
            r"\bcom\s+(?:o|a|seu|sua)\s+(?:gerente|supervisora?|responsavel|chefe)\b",
            r"\b(?:algum|um)\s+(?:humano|ser\s+humano)\b",
            r"\b(?:alguem|voces|voce)\s+(?:pode|podem|poderia|poderiam)\s+me\s+ligar\b"
            r"|\bme\s+(?:liguem|ligue|retornem\s+a\s+ligacao)\b",
        ),
        "fr": (
            r"\b(?:parler|discuter)\s+(?:a|au|aux|avec)\s+(?:un|une|quelqu'un|le|la|votre|vos"
            r"|responsable|superieur|manager|directeur|chef|service\s+client)\b",
            r"\b(?:veux|voudrais|exige|demande)\s+(?:le|la|un|une|votre)\s+(?:responsable"
            r"|superieure?|manager)\b",
            r"\bun\s+conseill(?:er|ere)\b|\bune\s+conseillere\b",
            r"\b(?:une?|le|la)\s+(?:vrai|vraie|veritable)\s+(?:humain|personne|conseill(?:er|ere)"
            r"|agent)\b",
            r"\bun\s+(?:etre\s+)?humain\b",
            r"\b(?:passez|passe|passer)[\s-]moi\s+(?:un|une|quelqu'un|le|la|votre)\b",
            r"\bmettez[\s-]moi\s+en\s+(?:relation|contact)\b",
            r"\b(?:rappelez|rappelle)[\s-]moi\b|\bme\s+rappeler\b|\bqu'on\s+me\s+rappelle\b",
            r"\bjoindre\s+(?:quelqu'un|un\s+conseiller|une\s+personne)\b",
        ),
        "de": (
            r"\b(?:mitarbeiter(?:in)?|kundenberater(?:in)?|sachbearbeiter(?:in)?)\b",
            r"\b(?:mit\s+einem|einen)\s+(?:echten\s+)?menschen\b",
            r"\becht(?:e|en|er)\s+(?:person|mensch(?:en)?|ansprechpartner(?:in)?|mitarbeiter)\b",
            r"\b(?:einen|ein)\s+ansprechpartner(?:in)?\b",
            r"\bvorgesetzt(?:en|e|er)\b",
            r"\bzuruckrufen\b|\bruckruf\b",
            r"\bverbinden\s+sie\s+mich\b|\bverbinde\s+mich\b",
            r"\bmit\s+(?:jemandem|einer\s+person|einem\s+menschen|(?:ihrem|eurem|dem|einem|deinem)"
            r"\s+(?:chef|vorgesetzten|manager|verantwortlichen|teamleiter|supervisor))\s+"
            r"(?:[^\s.,;:!?]+\s+){0,3}?(?:sprechen|reden|verbinden|telefonieren)\b",
        ),
        "nl": (
            r"\b(?:spreken|praten)\s+met\s+(?:een\s+)?(?:medewerker|mens|iemand|persoon)\b"
            r"|\bmedewerker\b",
        ),
        "zh": (
            # Not 人工智能 ("artificial intelligence": a product, not a person).
            r"人工(?!智能)",
            r"真人|活人",
            r"客服人员|客服人員|工作人员|工作人員",
            r"(?:找|叫|要|请|讓|让)(?:你们|你們)?(?:的)?(?:经理|經理|主管|负责人|負責人|领导|老板)",
            r"(?:经理|經理|主管|负责人|負責人)(?:来|來|出来|出來)",
            r"(?:跟|和|与|與|同)(?:真|一个|一個)?人(?:说|說|聊|谈|談|沟通|溝通|对话|對話)",
            # Not "the courier never called": the call is asked for.
            r"(?:给我|給我)(?:回|打)(?:个|個)?(?:电话|電話)|(?:打|回)(?:个|個)?(?:电话|電話)(?:给我|給我)",
        ),
        "ja": (
            r"(?:オペレーター?|担当者|担当の方|スタッフ|人間|責任者|上司|店長|係の人|係員|社員"
            r"|生身の人|(?<![友恋知個他本主犯配])人)(?:さん|様|の方|の人)?(?:と|に|を|へ)?(?:お|ご)?(?:話|はな|代わ|かわ"
            r"|変わ|替わ|つな|繋|お願い|出し|出せ|呼ん|呼べ|対応して)",
            r"有人(?:対応|チャット|窓口)",
            r"(?:お)?電話(?:を)?(?:ください|下さい|して(?:ほしい|欲しい|ください|下さい)|もらえ"
            r"|いただけ|頂け|お願い)",
            r"折り返し(?:の)?(?:電話|連絡)|コールバック",
        ),
    },
    "return": {
        "es": (
            r"\bdevolver(?:lo|la|los|las|te)?\b(?!\s+(?:el|mi)\s+dinero)",
            r"\bdevolucion(?:es)?\b(?!\s+del?\s+(?:dinero|importe))",
            r"\bregresar(?:lo|la|los|las)\b|\bregresarl[oa]s?\b|\bquiero\s+regresar\b",
            r"\bcambiar(?:l[oa]s?)?\s+(?:(?:el|la|los|las|un|una)\s+)?(?:\w+\s+)?por\s+(?:un|una"
            r"|otr[oa]|la|el)\b",
            r"\bcambio\s+de\s+talla\b|\bmandar(?:l[oa]s?)?\s+de\s+vuelta\b",
            r"\b(?:lo|la|los|las)\s+devuelvo\b|\bcomo\s+(?:se\s+)?devuelv[oe]\b",
        ),
        "pt": (
            r"\bdevolver\b(?!\s+(?:o\s+|meu\s+)?dinheiro)|\bdevolve-l[oa]s?\b",
            r"\bdevoluc(?:ao|oes)\b",
            r"\btrocar\b|\b(?:fazer|quero)\s+(?:a\s+|uma\s+)?troca\b",
        ),
        "fr": (
            r"\b(?:retourner|renvoyer|retour|echanger|echange)\b",
            r"\b(?:le|la|les)\s+rendre\b|\b(?:le|la|les)\s+renvoie\b",
        ),
        "de": (
            r"\b(?:zuruckschicken|zurucksenden|zuruckgeben|rucksendung|ruckgabe|retoure"
            r"|retourenetikett|retournieren|umtausch(?:en)?)\b",
        ),
        "nl": (r"\b(?:retourneren|terugsturen|ruilen)\b",),
        "zh": (
            # Not 钱退回来: money coming back is a refund.
            # Nor 退货已经签收 (the return was received): that asks about the refund.
            r"(?<!已经)(?<!已)退货(?!已)|退貨|退回(?!来|來)|退掉|退换|退換|七天无理由",
            r"(?:能|可以|可不可以|能不能|想|要|申请|申請|怎么|怎麼|如何)退(?!款|钱|錢|费|費|订|訂)",
            r"(?<!已经)(?<!已)寄回(?!去了)",
            r"换(?:货|一(?:个|件|双|条|下)|个|成|大|小)|換(?:貨|一)|更换|更換",
        ),
        "ja": (
            r"返品|返送|返却|交換|取り替え|取替え|取り換え|送り返(?:したい|せ|す(?:には|方法))",
        ),
    },
    "refund": {
        "es": (
            r"\breembols\w*|\breintegr\w*",
            r"\b(?:devuelvan|devuelva|devolver|devolverme|regresen|regresar)\s+(?:el|mi)\s+dinero\b"
            r"|\b(?:mi|el)\s+dinero\b|\b(?:mi|la)\s+plata\b",
            r"\bcobr(?:aron|ado|o|ais)\s+(?:\w+\s+)?(?:dos\s+veces|doble)\b|\bcobro\s+doble\b"
            r"|\bdoble\s+cobro\b",
        ),
        "pt": (
            r"\breembols\w*|\bestorn\w*",
            r"\bdinheiro\s+de\s+volta\b|\b(?:devolvam|devolver|devolva)\s+(?:o\s+|meu\s+)?dinheiro\b"
            r"|\b(?:o|meu)\s+dinheiro\b",
            r"\bcobrad[oa]s?\s+(?:\w+\s+)?(?:duas\s+vezes|em\s+dobro)\b|\bcobraram\s+(?:\w+\s+)?"
            r"(?:duas\s+vezes|em\s+dobro)\b|\bcobranca\s+(?:duplicada|em\s+dobro)\b",
        ),
        "fr": (
            r"\brembours\w*",
            r"\bmon\s+argent\b|\bmon\s+avoir\b|\bl'argent\b",
            r"\b(?:rien|pas)\s+(?:\w+\s+)?sur\s+(?:ma|mon)\s+(?:carte|compte)\b",
            r"\b(?:debite|preleve|facture)e?s?\s+(?:\w+\s+)?deux\s+fois\b",
        ),
        "de": (
            r"\b(?:ruck|zuruck)?erstatt(?:ung|en|et)\b|\b(?:ruckzahlung|gutschrift)\b",
            r"\bgeld\s+zuruck\b|\b(?:das|mein|meinem|mein)\s+geld\b",
            r"\b(?:doppelt|zweimal)\s+(?:abgebucht|berechnet|belastet|bezahlt|abgezogen)\b",
        ),
        "nl": (r"\b(?:terugbetaling|geld\s+terug|terugstorting)\b",),
        "zh": (
            r"退款|退钱|退錢|退费|退費|返款|返还|返還|退给我|退給我|钱[^,.!?\u3001\u3002]{0,6}退",
            r"(?:扣|收)了(?:我)?(?:两|兩)次|重复(?:扣款|扣费|收费)|重複(?:扣款|收費)|多(?:扣|收)了|差价",
        ),
        "ja": (r"返金|払い戻|払戻|(?:お金|代金)(?:を)?返|二重(?:に)?(?:請求|決済|引き落と)|返還",),
    },
    "order_status": {
        "es": (
            rf"\bdonde\s+(?:esta|estan|anda|andan|queda)\s+(?:mi|mis|el|la|los|las|nuestro)\s+{_W}?"
            r"(?:pedido|paquete|compra|envio|orden|encomienda|producto)s?\b",
            r"\b(?:todavia|aun|sigue\s+sin|nunca)\s+(?:no\s+)?(?:me\s+)?(?:ha\s+|han\s+)?"
            r"(?:llegado|llega|llego|llegar)\b|\bno\s+(?:me\s+)?(?:ha|han)\s+llegado\b",
            r"\bestado\s+de\s+(?:mi|el|la|mis)\s+(?:pedido|orden|compra|envio|paquete)",
            r"\bseguimiento\b|\brastre\w*",
            r"\b(?:ya\s+)?(?:enviaron|mandaron|despacharon|salio)\s+(?:mi|el|la)\b",
            r"\b(?:sabeis|saben|sabes)\s+algo\s+de\s+(?:mi|el)\b|\bnovedad(?:es)?\s+(?:de|sobre)"
            r"\s+(?:mi|el)\b",
            r"\bcuando\s+(?:llega|llegara|llegan|me\s+llega|me\s+llegara|recibo|recibire"
            r"|me\s+(?:lo|la)\s+(?:mandan|envian)|envian\s+mi)\b",
        ),
        "pt": (
            r"\bcade\b",
            rf"\bonde\s+(?:esta|estao|anda|fica)\s+(?:o\s+|a\s+)?(?:meu|minha|meus|minhas)\s+{_W}?"
            r"(?:pedido|encomenda|pacote|compra|entrega|produto)s?\b",
            r"\b(?:ainda\s+nao|nao)\s+(?:me\s+)?(?:chegou|chegaram|recebi|foi\s+entregue"
            r"|foi\s+enviad[oa])\b",
            r"\b(?:status|estado|situacao)\s+d[oa]\s+(?:meu\s+|minha\s+)?(?:pedido|encomenda"
            r"|compra|entrega)",
            r"\brastre\w*|\bnovidades?\s+(?:d[oa]|sobre\s+[oa])\s+(?:meu|minha)\b",
            r"\b(?:ja\s+)?(?:enviaram|despacharam|mandaram)\s+(?:o\s+|a\s+)?(?:meu|minha)\b",
            r"\bquando\s+(?:o\s+|a\s+)?(?:meu\s+|minha\s+)?(?:pedido\s+|encomenda\s+|compra\s+)?"
            r"(?:vai\s+chegar|chega|sera\s+entregue|vou\s+receber)\b",
        ),
        "fr": (
            r"\bou\s+(?:est|en\s+est|sont|en\s+sont)\s+(?:mon|ma|mes)\s+(?:colis|commande|livraison"
            r"|paquet|achat)s?\b",
            r"\b(?:toujours\s+pas|pas\s+encore|jamais)\s+(?:ete\s+)?(?:arrivee?s?|recue?s?|livree?s?)\b",
            r"\b(?:a\s+ete|est)\s+(?:bien\s+|deja\s+)?(?:expediee?s?|envoyee?s?|partie?s?)\b",
            r"\bquand\b(?:\s+[^\s.!?]+){0,6}?\s+(?:recevoir|arriver|arrivera|livree?|livrer)\b",
            r"\bsuivi\b|\bdes\s+nouvelles\s+de\s+(?:mon|ma|mes)\b",
        ),
        "de": (
            r"\bwo\s+(?:ist|bleibt)\s+mein(?:e)?\s+(?:\w+\s+)?(?:paket|bestellung|lieferung|sendung"
            r"|packchen)\b",
            r"\bwo\s+mein(?:e)?\s+(?:paket|bestellung|lieferung|sendung|packchen)\s+(?:ist|bleibt)\b",
            r"\b(?:noch\s+)?nicht\s+(?:angekommen|geliefert|zugestellt|erhalten|eingetroffen)\b",
            r"\b(?:ist|wurde)\s+(?:mein(?:e)?\s+\w+\s+)?(?:schon\s+|bereits\s+)?(?:versendet"
            r"|verschickt|versandt|rausgegangen)\b",
            r"\bwann\s+(?:kommt|kommen|wird|erhalte|bekomme|trifft)\b",
            r"\b(?:sendungsverfolgung|bestellstatus|paketverfolgung)\b",
            r"\b(?:was\s+)?neues\s+(?:zu|von|uber)\s+(?:meinem|meiner|meinen)\b",
        ),
        "nl": (r"\bwaar\s+(?:is|blijft)\s+mijn\s+(?:bestelling|pakket|pakketje)\b",),
        "zh": (
            r"(?:快递|快遞|包裹|订单|訂單|货|貨|东西|東西|物流|单子)[^,.!?\u3001\u3002]{0,4}(?:到|在)(?:哪|那)",
            r"(?:发|發|寄)(?:货|貨|出)(?:了)?(?:吗|嗎|没|沒|么)",
            r"还没(?:有)?(?:收到|到|送到|发货)|還沒(?:有)?(?:收到|到|發貨)",
            r"(?:什么时候|什麼時候|何时|何時|啥时候|几时)(?:能|可以|会|會)?(?:到|送到|收到|发货|發貨)",
            r"(?:送|寄)?到了(?:吗|嗎|没|沒|么)",
            r"物流|单号|單號|追踪|追蹤|跟踪|订单状态|訂單狀態|配送状态",
        ),
        "ja": (
            r"(?:いつ|何時)(?:頃|ごろ)?(?:に)?(?:届|着|発送|来|くる)",
            # Not "the code / the e-mail does not arrive": that is about the account.
            r"(?<!コードが)(?<!メールが)(?<!コード)(?<!メール)(?:まだ(?:届|来|着)"
            r"|届(?:きません|かない|いていない|いてない))|来ない|来ません",
            r"発送(?:され|済|しました|した)",
            r"(?:配送|配達|注文|発送|荷物)の?状況|追跡|問い合わせ番号",
            r"荷物(?:は|が)?(?:今)?どこ|準備中|どうなって(?:い)?ます(?:か)",
        ),
    },
    "shipping": {
        "es": (
            r"\b(?:hacen|haceis|realizan|tienen)\s+envios?\s+(?:a|al|internacional\w*)\b",
            r"\b(?:envian|enviais|mandan|entregan|envias)\s+(?:tambien\s+)?a\s+(?!mi\b)",
            r"\b(?:costo|coste|precio|gastos|cuanto\s+cuesta|cuanto\s+sale)\s+(?:de\s+)?(?:el\s+)?"
            r"envio\b|\bgastos\s+de\s+envio\b",
            r"\bcuanto\s+(?:cuesta|sale|vale)\s+(?:mandar|enviar|mandarlo|enviarlo)\b",
            r"\benvio\s+(?:gratis|gratuito|express|urgente|internacional|estandar)\b",
            r"\bcuanto\s+(?:tarda|tardan|demora)\b",
            r"\b(?:direccion|domicilio)\s+de\s+(?:entrega|envio)\b",
            r"\btransportista\b|\bpaqueteria\b|\bmensajeria\b|\bpunto\s+de\s+recogida\b",
        ),
        "pt": (
            r"\b(?:entregam|enviam|mandam|fazem\s+entregas?|fazem\s+envios?)\s+(?:para|pra|em|no|na"
            r"|ao|nos|nas)\b",
            r"\bfrete\b|\bportes\b|\bprazo\s+de\s+entrega\b|\bendereco\s+de\s+entrega\b",
            r"\b(?:custo|valor)\s+(?:de|do)\s+envio\b|\btransportadora\b",
        ),
        "fr": (
            r"\b(?:frais\s+de\s+port|frais\s+d'envoi|frais\s+de\s+livraison|delai\s+de\s+livraison)\b",
            r"\b(?:livrez|expediez|envoyez)[\s-]vous\b|\bvous\s+(?:livrez|expediez|envoyez)\b",
            r"\blivraison\s+(?:est\s+)?(?:gratuite|express|offerte|a\s+domicile|internationale)\b",
            r"\bcombien\s+de\s+temps\s+(?:prend|faut-il|met|dure)\b",
            r"\bpoint\s+relais\b|\badresse\s+de\s+livraison\b|\btransporteur\b",
            r"\bl'envoi\s+(?:vers|en|au|aux|pour|a)\b|\bcombien\s+coute\s+(?:la\s+)?livraison\b",
        ),
        "de": (
            r"\b(?:versand\w*|lieferzeit|lieferkosten|lieferadresse|lieferanschrift|packstation"
            r"|paketshop)\b",
            r"\b(?:liefert|liefern|verschickt|verschicken|versendet|schickt)\s+(?:ihr|sie)\b",
            r"\bwie\s+lange\s+dauert\s+(?:die\s+|der\s+)?(?:lieferung|versand|zustellung)\b",
            r"\bwas\s+kostet\s+(?:die|eine|der)\s+(?:lieferung|zustellung)\b|\blieferung\s+nach\b",
        ),
        "nl": (r"\b(?:verzending|verzendkosten|levertijd|bezorgkosten)\b",),
        "zh": (
            r"运费|運費|包邮|包郵|邮费|郵費",
            r"(?:发|發|寄|送|配送|邮寄|郵寄)(?:货|貨)?到[^,.!?\u3001\u3002]{1,8}?(?:吗|嗎|么|嘛)",
            r"几天(?:能|可以|就)?(?:送)?到|多久(?:能|可以|才)?(?:送)?到|多久发货|多久發貨",
            r"哪家快递|什么快递|什麼快遞|用的什么快递|顺丰|順豐",
            r"(?:改|修改|更改|换)(?:一下)?(?:收货|收貨|配送|送货)?地址|收货地址|收貨地址",
            r"海外|国外|國外|国际(?:运输|配送|快递)|自提|快递柜",
        ),
        "ja": (
            r"送料|配送料|(?:海外|国外)(?:発送|配送|への発送)",
            r"(?:に|へ|まで)(?:も)?(?:配送|発送|配達|送|届け)(?:でき|可能|して)",
            r"お届け先|届け先|配送先|送り先|(?:住所|宛先)(?:を|の)?変更",
            r"(?:日時|時間)指定|配送(?:方法|業者|会社)|何日(?:で|くらいで|ぐらいで)?届|置き配",
            r"(?:への|まで(?:の)?)(?:配送|発送|配達)|(?:配送|発送|配達)(?:は|に)?何日",
        ),
    },
    "account": {
        "es": (
            r"\b(?:mi|la|tu|su)\s+cuenta\b|\biniciar\s+sesion\b|\bcontrasena\b",
            r"\b(?:dar|darme|darse)\s+de\s+baja\b|\bboletin\b|\bcodigo\s+de\s+verificacion\b",
        ),
        "pt": (
            r"\b(?:minha|a|sua)\s+conta\b|\bsenha\b|\bcadastro\b",
            r"\bdescadastr\w*|\bcodigo\s+de\s+verificacao\b",
        ),
        "fr": (
            r"\b(?:mon\s+compte|compte\s+client|mot\s+de\s+passe|me\s+connecter|connexion)\b",
            r"\b(?:desabonner|desinscrire|desinscription)\b|\badresse\s+(?:e-?mail|mail)\b",
        ),
        "de": (
            r"\b(?:konto|kundenkonto|benutzerkonto|passwort|kennwort|einloggen|anmelden)\b",
            r"\b(?:abbestellen|abmelden)\b|\be-?mail-?adresse\b",
        ),
        "nl": (r"\b(?:wachtwoord|inloggen)\b",),
        "zh": (
            r"账户|账号|帐号|帳號|帳戶|登录|登陆|登入|登錄|密码|密碼|验证码|驗證碼|注销|註銷",
            r"退订|退訂|取消订阅|取消訂閱",
        ),
        "ja": (
            r"ログイン|パスワード|アカウント|会員(?:登録|情報)|認証コード|メルマガ|メールマガジン",
            r"退会|配信(?:を)?停止|サインイン|メールアドレス(?:を|の)?変更",
        ),
    },
    "complaint": {
        "es": (
            r"\b(?:pesim[oa]|horrible|fatal|vergonzos[oa]|inaceptable|indignante|lamentable"
            r"|desastre|verguenza|asco|decepcionad[oa]s?|decepcion|enfadad[oa]|hart[oa]"
            r"|groser[oa]|maleducad[oa]|queja|reclamacion|reclamo|estafa|timo)\b"
            r"|\bfalta\s+de\s+respeto\b",
            r"\bnunca\s+mas\b|\b(?:segunda|tercera|cuarta)\s+vez\b",
            r"\bnadie\s+(?:me\s+)?(?:contesta|responde|atiende|ayuda)\b",
        ),
        "pt": (
            r"\b(?:pessim[oa]|horrivel|terrivel|absurdo|inaceitavel|vergonha|decepcionad[oa]s?"
            r"|decepcao|lamentavel|ridicul[oa]|gross[oa]|reclamacao|reclamar|insatisfeit[oa]"
            r"|porcaria|lixo|palhacada)\b|\bfalta\s+de\s+respeito\b",
            r"\b(?:segunda|terceira|quarta)\s+vez\b",
            r"\bninguem\s+(?:me\s+)?(?:responde|atende|ajuda|retorna)\b|\bnao\s+tem\s+nada\s+a\s+ver\b",
        ),
        "fr": (
            r"\b(?:plainte|reclamation|decue?|inacceptable|lamentable|inadmissible|scandaleux"
            r"|scandale|honteu(?:x|se)|honte|decevante?|desagreable|insupportable|catastrophique|nul"
            r"|nulle)\b",
            r"\b(?:deuxieme|troisieme|quatrieme)\s+fois\b|\bn'importe\s+quoi\b",
            r"\bpersonne\s+ne\s+(?:repond|rappelle|m'aide)\b|\brien\s+a\s+voir\s+avec\b",
        ),
        "de": (
            r"\b(?:beschwerde|beschweren|enttauscht|unverschamt\w*|frechheit|unmoglich|unzufrieden"
            r"|unfreundlich|skandal|zumutung)\b|\bkatastroph\w*|\bkeine\s+antwort\b",
            r"\b(?:zweite|dritte|vierte)\s+mal\b|\bniemand\s+(?:antwortet|meldet|hilft)\b",
        ),
        "nl": (r"\bklacht\b|\bteleurgesteld\b",),
        "zh": (
            r"第[二三四五两2-5]次|太差|差劲|差勁|投诉|投訴|失望|生气|生氣|恶劣|惡劣|离谱|離譜|垃圾",
            r"坑人|骗子|騙子|不满|不滿|怎么搞的|怎麼搞的|气死|氣死|货不对板|不回(?:消息|复)",
            r"没人(?:理|回)|(?:和|跟)图片(?:完全)?不(?:一样|符)",
        ),
        "ja": (
            r"最悪|苦情|クレーム|がっかり|ひど(?:い|すぎ|かった)|酷(?:い|すぎ)|ありえない|あり得ない"
            r"|ふざけ|いい加減に",
            r"[二三四2-4]回目|態度が(?:悪|ひど)|誰も(?:返事|返信|対応|電話)|写真と(?:全然|全く)?違",
            r"不満|失礼|腹が立",
        ),
    },
    "product_question": {
        "es": (
            r"\b(?:viene|vienen|hay|tienen|existe)\s+(?:\w+\s+)?en\s+(?:color\s+)?(?:azul|rojo|negro"
            r"|blanco|verde|gris|rosa|amarillo|marron|beige|otro\s+color|otros\s+colores)\b",
            r"\btallas?\b|\bcolor(?:es)?\b|\bgarantia\b|\bstock\b|\bexistencias\b|\bbateria\b",
            r"\blavavajillas\b|\blavaplatos\b",
            r"\bmaterial\b|\bde\s+que\s+(?:esta|es)\s+hech[oa]\b|\binduccion\b|\bmedidas\b"
            r"|\bdimensiones\b",
            r"\b(?:trae|traen|incluye|incluyen|incluid[oa]s?|viene\s+con|vienen\s+con)\b",
            r"\b(?:sirve|vale)\s+(?:para|con)\b|\bes\s+de\s+(?:cristal|vidrio|algodon|plastico"
            r"|madera|metal|cuero|lana)\b",
        ),
        "pt": (
            r"\btamanho\b|\bna\s+cor\b|\bcores\b|\bque\s+cor\b|\bgarantia\b|\bestoque\b|\bbateria\b",
            r"\bmaterial\b|\btecido\b|\binducao\b|\b(?:medidas|dimensoes)\b|\blava-?loucas\b",
            r"\bmaquina\s+de\s+lavar\s+louca\b",
            r"\b(?:funciona|serve)\s+(?:em|para|com|no|na)\b",
            r"\b(?:vem|vêm|veem)\s+com\b|\bacompanha\b|\binclus[oa]s?\b",
        ),
        "fr": (
            r"\b(?:taille|couleur|garantie|lavable|en\s+stock|autonomie|batterie|matiere)\b",
            r"\bexiste\s+en\b|\ben\s+(?:laine|coton|cuir|bois|verre|plastique|acrylique|lin|soie)\b",
            r"\b(?:de\s+nouveau|a\s+nouveau)\s+disponible\b|\blave-vaisselle\b",
            r"\b(?:fournie?s?|incluse?s?|livree?s?\s+avec)\b",
        ),
        "de": (
            r"\b(?:grosse|grossen|farbe|farben|garantie|waschbar|auf\s+lager|akku|batterie"
            r"|material|lieferbar|verfugbar|induktion\w*)\b|\bspulmaschinen\w*",
            r"\bin\s+(?:grun|rot|blau|schwarz|weiss|grau|gelb|braun|beige|rosa)\b",
            r"\b(?:dabei|enthalten|inklusive|mitgeliefert)\b",
            r"\baus\s+(?:reiner\s+)?(?:baumwolle|wolle|leder|holz|metall|glas|kunststoff|plastik)\b",
        ),
        "nl": (r"\b(?:maat|kleur|garantie|wasbaar|op\s+voorraad)\b",),
        "zh": (
            r"(?:有|有没有|有沒有)[^,.!?\u3001\u3002]{0,6}(?:色|颜色|顏色|码|碼|尺寸)",
            r"颜色|顏色|尺码|尺碼|尺寸|码数|保修|质保|保固|材质|材質|面料|成分|纯棉|純棉",
            r"(?:可以|能)(?:用|机洗|水洗|放)|补货|補貨|有货|缺货|现货|電磁爐|电磁炉|洗碗机",
            r"支持[^,.!?\u3001\u3002]{0,8}(?:吗|嗎)|适合|適合|兼容|续航|電池|电池|说明书|怎么用",
            r"有几(?:档|種|种|款|个颜色|个尺码)|几档",
        ),
        "ja": (
            r"(?:色|カラー|サイズ)(?:違い|展開)?(?:は|が)?(?:あります|ある|あり)|サイズ|素材|保証",
            r"対応して(?:い)?ます(?:か)?|再入荷|在庫|入荷|使えますか|食洗機|洗濯機|洗え",
            r"何色|寸法|重さ|綿|コットン|ウール|バッテリー|電池",
            r"の(?:黒|白|赤|青|グレー|ネイビー)(?:は|って)(?:あります|ある)",
            r"付いて(?:い)?ます(?:か)?|付属|同梱",
        ),
    },
}

# "I don't want a bot": a negated wish that asks for a person.
NOT_A_BOT: tuple[str, ...] = (
    r"\bno\s+(?:(?:quiero|deseo|necesito)\s+)?(?:hablar\s+con\s+)?(?:(?:un|una|el|la|ningun"
    r"|ninguna|mas|otro)\s+)?(?:bot|robot|maquina|contestador|chatbot)s?\b|\bnada\s+de\s+bots\b",
    r"\bnao\s+(?:(?:quero|desejo|preciso)\s+)?(?:falar\s+com\s+)?(?:(?:um|uma|o|a|mais|outro)\s+)?"
    r"(?:bot|robo|robot|maquina|chatbot)s?\b",
    r"\b(?:pas|plus)\s+(?:(?:de|d'un|un|une|le|ce|avec\s+un|a\s+un)\s+)?(?:bot|robot|chatbot"
    r"|machine)s?\b",
    r"\bkein(?:en|e)?\s+(?:bot|roboter|chatbot|maschine|computer|automaten)\b"
    r"|\bnicht\s+mit\s+(?:einem|dem)\s+(?:bot|roboter|chatbot)\b",
    r"(?:不想|不要|不願|不愿意|别|別)(?:再)?(?:跟|和|与|與|同)?(?:个|個)?(?:机器人|機器人|ai|自动回复)",
    r"(?:ボット|ロボット|機械|ai|自動応答|自動返信|チャットボット)(?:じゃ|では|で)(?:なく|なし|嫌|いや)",
)

# Negated wishes whose scope is the rest of their clause: "no quiero un reembolso, ...".
WISH_NEGATORS: tuple[str, ...] = (
    r"\bno\s+(?:(?:me\s+)?(?:quiero|necesito|deseo|busco|pienso|pretendo|quisiera|hace\s+falta)"
    r"|es\s+necesario)\b",
    r"\bnao\s+(?:(?:me\s+)?(?:quero|preciso|desejo|pretendo|vou)|e\s+necessario|precisa)\b",
    r"\b(?:ne\s+)?(?:veux|voudrais|souhaite|desire)\s+pas\b|\bpas\s+besoin\s+(?:de|d')"
    r"|\bn'ai\s+pas\s+besoin\b",
    r"\b(?:brauche|will|mochte|mochten|wunsche|benotige|wollen|brauchen)\s+(?:\w+\s+){0,3}?"
    r"(?:kein(?:e|en|er)?|nicht)\b",
    r"不想|不要|不需要|不用|无需|無需|没必要|沒必要|不必",
)
# Japanese puts the negation after the wish: its scope is the clause before it.
WISH_NEGATORS_AFTER: tuple[str, ...] = (
    r"必要(?:は)?(?:ない|ありません|ないです)|たく(?:は)?(?:ない|ありません)|いらない|いりません"
    r"|要らない|結構です|不要です",
)
# Words that end a negated wish's scope early: "no quiero un humano, solo ..." and the like.
WISH_TURNS = (
    r"pero|sino|solo|solamente|mas|apenas|somente|mais|juste|seulement|plutot|aber|sondern|nur"
)

DAMAGE: dict[str, tuple[str, ...]] = {
    "es": (
        r"\b(?:rot[oa]s?|danad[oa]s?|defectuos[oa]s?|estropead[oa]s?|averiad[oa]s?|rajad[oa]s?"
        r"|partid[oa]s?|quebrad[oa]s?|astillad[oa]s?|abollad[oa]s?|rayad[oa]s?|destrozad[oa]s?"
        r"|rompio)\b",
        r"\bse\s+(?:rompio|estropeo|dano|averio)\b|\bcon\s+defectos?\b",
    ),
    "pt": (
        r"\b(?:quebrad[oa]s?|danificad[oa]s?|defeituos[oa]s?|estragad[oa]s?|rachad[oa]s?"
        r"|trincad[oa]s?|amassad[oa]s?|partid[oa]s?|riscad[oa]s?|avariad[oa]s?|quebrou)\b",
        r"\bcom\s+defeito\b",
    ),
    "fr": (
        # "se casse" asks whether it breaks; "cassé" folds to the same letters.
        r"(?<!\bse\s)\b(?:cassee?s?|abimee?s?|endommagee?s?|defectueu(?:x|se|ses)|brisee?s?"
        r"|fissuree?s?|fendue?s?|rayee?s?|ecrasee?s?|en\s+panne)\b",
    ),
    "de": (
        r"\b(?<!leicht\s)(?<!schnell\s)(?:kaputt|beschadigt\w*|defekt\w*|zerbrochen|zerkratzt"
        r"|gesprungen|zersprungen|verbeult|gerissen)\b",
    ),
    "nl": (r"\b(?:kapot|beschadigd|defect)\b",),
    "zh": (
        r"坏了|壞了|坏掉|壞掉|坏的|壞的|摔坏|压坏|弄坏|损坏|損壞|破损|破損|碎了|摔碎|碎的|是碎|破了|裂了",
        r"裂开|裂縫|裂缝|有裂|划痕|瑕疵|次品|残次|质量问题|質量問題|故障|失灵|坏(?=[,.!?。\s]|$)",
    ),
    "ja": (
        r"(?:壊れ|割れ|欠け|ひび|ヒビ|破損|故障|不良品|初期不良|傷が|キズが|へこみ|凹み|破れ)"
        r"(?!て[はも]?い?(?:な|ません)|ていな|やす|たら|ません|ない|ず)",
    ),
}
# "It doesn't work" in each language: a damage report unless it is about a code or a link.
NOT_WORKING: dict[str, tuple[str, ...]] = {
    "es": (
        r"\bno\s+(?:me\s+)?(?:funciona|funcionan|enciende|encienden|prende|prenden|carga|cargan"
        r"|anda|andan)\b|\bdejo\s+de\s+funcionar\b",
    ),
    "pt": (
        r"\bnao\s+(?:esta\s+)?(?:funciona|liga|carrega|funcionando|ligando|carregando)\b"
        r"|\bparou\s+de\s+funcionar\b",
    ),
    "fr": (
        r"\bne\s+(?:marche|fonctionne|s'allume|charge|demarre)\s+(?:plus|pas)\b"
        r"|\b(?:marche|fonctionne)\s+(?:plus|pas)\b",
    ),
    "de": (
        r"\bfunktionier(?:t|en)\s+(?:\w+\s+)?nicht\b|\bgeht\s+nicht\s+(?:mehr\s+)?an\b"
        r"|\blasst\s+sich\s+nicht\s+(?:mehr\s+)?(?:einschalten|laden|anschalten)\b",
    ),
    "zh": (
        r"不能用|用不了|开不了机|開不了機|无法开机|無法開機|不工作|不亮|没反应|沒反應|打不开"
        r"|没声音",
    ),
    "ja": (
        r"動かない|動きません|電源が入(?:らない|りません)|(?:つか|点か)ない|聞こえない|映らない"
        r"|使えない|使えません|作動しない|充電できない",
    ),
}
# Negators that, a word or two before a damage word, deny it: "no está roto", "nichts kaputt".
DAMAGE_NEGATORS = (
    r"no|nada|sin|ni|nunca|nao|nem|sem|nicht|nichts|kein\w*|ohne|nie|pas|rien|sans|jamais|aucun\w*"
)
# The same, written straight before the word in Chinese: 没有坏, 没有被压坏.
DAMAGE_NEGATORS_CJK = r"(?:没有?|沒有?|不是|并没有?|並沒有?|无|無|未)(?:任何|被)?$"
# Someone else broke something of theirs: "my brother broke his phone" is no report.
OTHERS_BROKE_IT: tuple[str, ...] = (
    r"\b(?:brother|sister|son|daughter|kid|kids|child|friend|dog|cat|puppy|husband|wife|boyfriend"
    r"|girlfriend|mum|mom|dad|he|she|they)\s+(?:\w+\s+){0,2}?(?:broke|smashed|cracked|dropped"
    r"|damaged|shattered)\b",
    r"\b(?:hermano|hermana|hijo|hija|nino|nina|perro|gato|amigo|amiga|marido|esposo|esposa|novio"
    r"|novia|mama|papa|el|ella)\s+(?:\w+\s+){0,2}?(?:rompio|estropeo|dano|rajo|se\s+cargo)\b",
    r"\b(?:irmao|irma|filho|filha|cachorro|gato|amigo|amiga|marido|esposa|namorado|namorada|mae"
    r"|pai|ele|ela)\s+(?:\w+\s+){0,2}?(?:quebrou|estragou|danificou|derrubou)\b",
    r"\b(?:frere|soeur|sœur|fils|fille|chien|chat|ami|amie|mari|femme|copain|copine|mere|pere|il"
    r"|elle)\s+(?:\w+\s+){0,2}?(?:a|avait)\s+(?:\w+\s+)?(?:casse|abime|brise|endommage)\b",
    r"\b(?:bruder|schwester|sohn|tochter|kind|hund|katze|freund|freundin|mann|frau|mutter|vater"
    r"|er|sie)\s+hat\s+(?:[^\s.,;:!?]+\s+){0,8}?(?:kaputt\s*gemacht|zerbrochen|beschadigt"
    r"|zerstort)\b",
    r"(?:弟弟|哥哥|姐姐|妹妹|儿子|兒子|女儿|女兒|孩子|小孩|朋友|老公|老婆|男朋友|女朋友|狗|猫|貓|他|她)"
    r"[^,.!?\u3001\u3002]{0,3}把",
)
# What "does not work" may be said of without the item being damaged.
NOT_THE_ITEM: tuple[str, ...] = (
    r"\b(?:codigo|enlace|pagina|web|app|contrasena|cupon|descuento|cuenta|senha|conta|cupom|site"
    r"|lien|code|compte|seite|konto|gutschein|rabattcode|passwort|link|pagamento|pago|paiement"
    r"|zahlung)\b",
    r"优惠券|优惠码|链接|鏈接|网站|網站|网页|验证码|账号|密码|支付|付款",
    r"クーポン|リンク|サイト|アプリ|パスワード|ログイン|支払い|決済",
)

# Cues for an order's whereabouts that decide only when nothing stronger matched.
WEAK_ORDER_STATUS: tuple[str, ...] = (
    r"\b(?:mi|meu|minha)\s+(?:pedido|compra|encomenda|paquete)\b|\b(?:ma|mon)\s+(?:commande"
    r"|colis)\b|\bmeine\s+(?:bestellung|lieferung)\b|\bmein\s+paket\b",
    r"\b(?:retrasad[oa]|atrasad[oa]|en\s+retard|verspatet|verzogert)\b",
    r"延迟|延误|延遲|延誤|我的订单|我的訂單|遅れ|遅延",
)
