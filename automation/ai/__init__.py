"""The AI that answers customers: providers (openai, local) behind one interface.

Use automation.ai.response_generator: generate_reply, suggest_replies,
summarize_conversation, detect_intent, detect_language.
"""
