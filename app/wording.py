# Chinese and Japanese punctuation is full-width on purpose.
# ruff: noqa: RUF001
"""The sentences the pipeline writes to customers itself, in each of ``app.language.LANGUAGES``.

Return decisions (``app.rules``) and the e-mail greeting, sign-off and the word read
for "#" (``app.formatting``): everything a customer reads that the model did not write.
Any other language gets the English text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.language import Language, sentence_language


@dataclass(frozen=True, kw_only=True)
class Wording:
    """One language's sentences; ``{placeholders}`` are filled by the functions below."""

    return_accepted: str
    non_returnable: str  # {order_id} {items}
    items_in_category: str  # {categories}, one category
    items_in_categories: str  # {categories}, several
    categories: dict[str, str]
    list_and: str  # before the last of several categories
    list_comma: str
    not_delivered: str  # {order_id}
    window_expired: str  # {order_id} {days} {window} {date}
    within_window: str  # {order_id} {days} {window} {date}
    window: str  # {days}
    damaged_window: str  # {days}
    months: tuple[str, ...]
    date: str  # {day} {month} {month_name} {year}
    greeting_named: str  # {name}
    greeting: str
    sign_off: str
    number_word: str  # what "#" before digits is read as


_EN = Wording(
    return_accepted=(
        "Your return for order {order_id} is accepted: a prepaid return label is on its way "
        "to you by e-mail."
    ),
    non_returnable=(
        "Order {order_id} cannot be returned because it contains {items}, which are never "
        "returnable, and a return covers the whole order."
    ),
    items_in_category="items in the {categories} category",
    items_in_categories="items in the {categories} categories",
    categories={},
    list_and=" and ",
    list_comma=", ",
    not_delivered="Order {order_id} has not been delivered yet, so it cannot be returned.",
    window_expired=(
        "Order {order_id} can no longer be returned because its {window} ended on {date}."
    ),
    within_window=(
        "Order {order_id} can be returned because it is within its {window}, which ends "
        "on {date}."
    ),
    window="{days}-day return window",
    damaged_window="{days}-day return window for damaged items",
    months=(
        "January", "February", "March", "April", "May", "June", "July", "August",
        "September", "October", "November", "December",
    ),
    date="{day} {month_name} {year}",
    greeting_named="Dear {name},",
    greeting="Hello,",
    sign_off="Kind regards,\nCustomer Support",
    number_word="number ",
)  # fmt: skip

_WORDINGS: dict[Language, Wording] = {
    "en": _EN,
    "es": Wording(
        return_accepted=(
            "Su devolución del pedido {order_id} está aceptada: recibirá por correo "
            "electrónico una etiqueta de devolución prepagada."
        ),
        non_returnable=(
            "El pedido {order_id} no se puede devolver porque contiene {items}, que nunca "
            "admiten devolución, y una devolución incluye el pedido completo."
        ),
        items_in_category="artículos de la categoría {categories}",
        items_in_categories="artículos de las categorías {categories}",
        categories={
            "grocery": "alimentación",
            "gift-card": "tarjetas regalo",
            "digital": "productos digitales",
            "personal-care": "cuidado personal",
        },
        list_and=" y ",
        list_comma=", ",
        not_delivered="El pedido {order_id} aún no se ha entregado, así que no se puede devolver.",
        window_expired=(
            "El pedido {order_id} ya no se puede devolver porque su {window} terminó el {date}."
        ),
        within_window=(
            "El pedido {order_id} se puede devolver porque está dentro de su {window}, que "
            "termina el {date}."
        ),
        window="plazo de devolución de {days} días",
        damaged_window="plazo de devolución de {days} días para artículos dañados",
        months=(
            "enero",
            "febrero",
            "marzo",
            "abril",
            "mayo",
            "junio",
            "julio",
            "agosto",
            "septiembre",
            "octubre",
            "noviembre",
            "diciembre",
        ),
        date="{day} de {month_name} de {year}",
        greeting_named="Hola, {name}:",
        greeting="Hola:",
        sign_off="Saludos cordiales,\nAtención al cliente",
        number_word="número ",
    ),
    "pt": Wording(
        return_accepted=(
            "A devolução do pedido {order_id} foi aceita: uma etiqueta de devolução pré-paga "
            "será enviada para o seu e-mail."
        ),
        non_returnable=(
            "O pedido {order_id} não pode ser devolvido porque contém {items}, que nunca "
            "podem ser devolvidos, e uma devolução abrange o pedido inteiro."
        ),
        items_in_category="itens da categoria {categories}",
        items_in_categories="itens das categorias {categories}",
        categories={
            "grocery": "alimentos",
            "gift-card": "cartões-presente",
            "digital": "produtos digitais",
            "personal-care": "cuidados pessoais",
        },
        list_and=" e ",
        list_comma=", ",
        not_delivered=(
            "O pedido {order_id} ainda não foi entregue, por isso não pode ser devolvido."
        ),
        window_expired=(
            "O pedido {order_id} já não pode ser devolvido porque o {window} terminou em {date}."
        ),
        within_window=(
            "O pedido {order_id} pode ser devolvido porque está dentro do {window}, que "
            "termina em {date}."
        ),
        window="prazo de devolução de {days} dias",
        damaged_window="prazo de devolução de {days} dias para itens danificados",
        months=(
            "janeiro",
            "fevereiro",
            "março",
            "abril",
            "maio",
            "junho",
            "julho",
            "agosto",
            "setembro",
            "outubro",
            "novembro",
            "dezembro",
        ),
        date="{day} de {month_name} de {year}",
        greeting_named="Olá, {name},",
        greeting="Olá,",
        sign_off="Atenciosamente,\nAtendimento ao cliente",
        number_word="número ",
    ),
    "de": Wording(
        return_accepted=(
            "Ihre Rücksendung für Bestellung {order_id} ist angenommen: Ein frankiertes "
            "Rücksendeetikett ist per E-Mail zu Ihnen unterwegs."
        ),
        non_returnable=(
            "Bestellung {order_id} kann nicht zurückgegeben werden, weil sie {items} enthält, "
            "die nie zurückgegeben werden können, und eine Rücksendung immer die ganze "
            "Bestellung umfasst."
        ),
        items_in_category="Artikel der Kategorie {categories}",
        items_in_categories="Artikel der Kategorien {categories}",
        categories={
            "grocery": "Lebensmittel",
            "gift-card": "Geschenkkarten",
            "digital": "digitale Produkte",
            "personal-care": "Körperpflege",
        },
        list_and=" und ",
        list_comma=", ",
        not_delivered=(
            "Bestellung {order_id} wurde noch nicht zugestellt und kann daher nicht "
            "zurückgegeben werden."
        ),
        window_expired=(
            "Bestellung {order_id} kann nicht mehr zurückgegeben werden, weil ihre {window} "
            "am {date} endete."
        ),
        within_window=(
            "Bestellung {order_id} kann zurückgegeben werden, weil ihre {window} noch bis "
            "zum {date} läuft."
        ),
        window="Rückgabefrist von {days} Tagen",
        damaged_window="Rückgabefrist für beschädigte Artikel von {days} Tagen",
        months=(
            "Januar",
            "Februar",
            "März",
            "April",
            "Mai",
            "Juni",
            "Juli",
            "August",
            "September",
            "Oktober",
            "November",
            "Dezember",
        ),
        date="{day}. {month_name} {year}",
        greeting_named="Hallo {name},",
        greeting="Guten Tag,",
        sign_off="Viele Grüße\nIhr Kundenservice",
        number_word="Nummer ",
    ),
    "fr": Wording(
        return_accepted=(
            "Votre retour pour la commande {order_id} est accepté : une étiquette de retour "
            "prépayée vous est envoyée par e-mail."
        ),
        non_returnable=(
            "La commande {order_id} ne peut pas être retournée car elle contient {items}, qui "
            "ne sont jamais repris, et un retour porte sur toute la commande."
        ),
        items_in_category="des articles de la catégorie {categories}",
        items_in_categories="des articles des catégories {categories}",
        categories={
            "grocery": "alimentation",
            "gift-card": "cartes cadeaux",
            "digital": "produits numériques",
            "personal-care": "soins personnels",
        },
        list_and=" et ",
        list_comma=", ",
        not_delivered=(
            "La commande {order_id} n'a pas encore été livrée, elle ne peut donc pas être "
            "retournée."
        ),
        window_expired=(
            "La commande {order_id} ne peut plus être retournée car son {window} a pris fin "
            "le {date}."
        ),
        within_window=(
            "La commande {order_id} peut être retournée car elle est dans son {window}, qui se "
            "termine le {date}."
        ),
        window="délai de retour de {days} jours",
        damaged_window="délai de retour de {days} jours pour les articles endommagés",
        months=(
            "janvier",
            "février",
            "mars",
            "avril",
            "mai",
            "juin",
            "juillet",
            "août",
            "septembre",
            "octobre",
            "novembre",
            "décembre",
        ),
        date="{day} {month_name} {year}",
        greeting_named="Bonjour {name},",
        greeting="Bonjour,",
        sign_off="Cordialement,\nLe service client",
        number_word="numéro ",
    ),
    "zh": Wording(
        return_accepted=(
            "您对订单 {order_id} 的退货申请已受理：预付退货标签将通过电子邮件发送给您。"
        ),
        non_returnable=(
            "订单 {order_id} 无法退货，因为其中包含{items}，这些商品一律不可退货，"
            "且退货须针对整个订单。"
        ),
        items_in_category="{categories}类商品",
        items_in_categories="{categories}类商品",
        categories={
            "grocery": "食品",
            "gift-card": "礼品卡",
            "digital": "数字商品",
            "personal-care": "个人护理",
        },
        list_and="和",
        list_comma="、",
        not_delivered="订单 {order_id} 尚未送达，因此无法退货。",
        window_expired="订单 {order_id} 已无法退货，因为其{window}已于{date}结束。",
        within_window="订单 {order_id} 可以退货，因为仍在{window}内，该期限至{date}结束。",
        window="{days}天退货期",
        damaged_window="损坏商品的{days}天退货期",
        months=tuple(str(month) for month in range(1, 13)),
        date="{year}年{month}月{day}日",
        greeting_named="{name}，您好：",
        greeting="您好：",
        sign_off="此致\n客户服务部",
        number_word="编号",
    ),
    "ja": Wording(
        return_accepted=(
            "ご注文 {order_id} の返品を承りました。前払いの返品ラベルをメールでお送りします。"
        ),
        non_returnable=(
            "ご注文 {order_id} には返品できない{items}が含まれているため、返品できません。"
            "返品はご注文全体が対象となります。"
        ),
        items_in_category="{categories}カテゴリーの商品",
        items_in_categories="{categories}カテゴリーの商品",
        categories={
            "grocery": "食品",
            "gift-card": "ギフトカード",
            "digital": "デジタル商品",
            "personal-care": "パーソナルケア",
        },
        list_and="・",
        list_comma="・",
        not_delivered="ご注文 {order_id} はまだ配達されていないため、返品できません。",
        window_expired="ご注文 {order_id} は{window}が{date}に終了したため、返品できません。",
        within_window="ご注文 {order_id} は{window}内（{date}まで）のため、返品できます。",
        window="{days}日間の返品期間",
        damaged_window="破損品の{days}日間の返品期間",
        months=tuple(str(month) for month in range(1, 13)),
        date="{year}年{month}月{day}日",
        greeting_named="{name}様",
        greeting="お客様",
        sign_off="よろしくお願いいたします。\nカスタマーサポート",
        number_word="番号",
    ),
}


def wording(language: str) -> Wording:
    """The sentences for ``language``; English for a language without its own."""
    return _WORDINGS[sentence_language(language)]


def format_date(value: datetime, language: str) -> str:
    words = wording(language)
    # French writes the first of the month as an ordinal: "1er mars".
    first = value.day == 1 and sentence_language(language) == "fr"
    return words.date.format(
        day="1er" if first else value.day,
        month=value.month,
        month_name=words.months[value.month - 1],
        year=value.year,
    )


def categories_phrase(names: list[str], language: str) -> str:
    """ "items in the grocery and digital categories", in ``language``."""
    words = wording(language)
    shown = [words.categories.get(name, name) for name in names]
    listed = (
        shown[0]
        if len(shown) == 1
        else words.list_comma.join(shown[:-1]) + words.list_and + shown[-1]
    )
    template = words.items_in_category if len(shown) == 1 else words.items_in_categories
    return template.format(categories=listed)
