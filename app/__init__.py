"""flowdesk: real-time GenAI customer support on Kafka."""
