"""The local provider's fixed sentences, in the languages it replies in (en, de, fr, es)."""
from __future__ import annotations

LANGUAGES = ("en", "de", "fr", "es")

GREETING = {
    "en": "Hi{name}! Thanks for messaging {business}. How can I help you today?",
    "de": "Hallo{name}! Danke für deine Nachricht an {business}. Wie kann ich dir helfen?",
    "fr": "Bonjour{name} ! Merci pour votre message à {business}. Comment puis-je vous aider ?",
    "es": "¡Hola{name}! Gracias por escribir a {business}. ¿En qué puedo ayudarte?",
}
THANKS = {
    "en": "You're welcome{name}! Is there anything else I can help you with?",
    "de": "Gern geschehen{name}! Kann ich sonst noch etwas für dich tun?",
    "fr": "Avec plaisir{name} ! Puis-je vous aider pour autre chose ?",
    "es": "¡De nada{name}! ¿Puedo ayudarte con algo más?",
}
GOODBYE = {
    "en": "Thanks for chatting with {business}{name}. Have a great day!",
    "de": "Danke für deine Nachricht an {business}{name}. Einen schönen Tag noch!",
    "fr": "Merci d'avoir écrit à {business}{name}. Bonne journée !",
    "es": "Gracias por escribir a {business}{name}. ¡Que tengas un buen día!",
}
US = {"en": "us", "de": "uns", "fr": "nous", "es": "nosotros"}
HELLO = {"en": "Hi{name}! ", "de": "Hallo{name}! ", "fr": "Bonjour{name} ! ", "es": "¡Hola{name}! "}
LEAD_IN = {
    "en": "Here's what I can tell you about {topic}:",
    "de": "Dazu kann ich dir Folgendes sagen ({topic}):",
    "fr": "Voici ce que je peux vous dire ({topic}) :",
    "es": "Esto es lo que puedo decirte sobre {topic}:",
}
HANDOFF = {
    "en": "Thanks for your message! A member of our team will get back to you here as soon as "
          "possible.",
    "de": "Danke für deine Nachricht! Jemand aus unserem Team meldet sich hier so bald wie "
          "möglich.",
    "fr": "Merci pour votre message ! Un membre de notre équipe vous répondra ici dès que "
          "possible.",
    "es": "¡Gracias por tu mensaje! Alguien de nuestro equipo te responderá aquí lo antes "
          "posible.",
}
SUGGESTIONS = {
    "en": ["Thanks for your message! Let me check this for you and get back to you shortly.",
           "Could you share a few more details (for example your order number) so I can help?",
           "Is there anything else I can help you with?"],
    "de": ["Danke für deine Nachricht! Ich prüfe das und melde mich gleich.",
           "Kannst du mir ein paar Details mehr geben (z. B. deine Bestellnummer)?",
           "Kann ich sonst noch etwas für dich tun?"],
    "fr": ["Merci pour votre message ! Je vérifie et je reviens vers vous rapidement.",
           "Pouvez-vous me donner un peu plus de détails (par exemple votre numéro de commande) ?",
           "Puis-je vous aider pour autre chose ?"],
    "es": ["¡Gracias por tu mensaje! Lo reviso y te respondo enseguida.",
           "¿Podrías darme algunos detalles más (por ejemplo tu número de pedido)?",
           "¿Puedo ayudarte con algo más?"],
}
