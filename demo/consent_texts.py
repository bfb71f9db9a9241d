"""The demo study's consent text in Spanish and French (demonstration text, like the English)."""

from __future__ import annotations

CONSENT_TEXTS: dict[str, dict[str, str]] = {
    "es": {
        "title": "Consentimiento para participar en {name}",
        "body": """Este estudio analiza la presión arterial medida en casa.

Si participa, se tomará la presión arterial con su tensiómetro Withings dos veces por la mañana y
dos veces por la tarde-noche, durante todo el estudio. Sus mediciones (presión arterial, pulso, la
hora de cada medición y el tensiómetro que la tomó) se envían automáticamente al equipo del estudio.

El equipo del estudio ve un código de estudio, no su nombre. Puede dejar el estudio en cualquier
momento, sin dar ninguna razón, desde su página privada o contactando con el equipo del estudio.

Este es un texto de demostración: el estudio de demostración no es un estudio real.""",
        "statements": """He leído y entendido la información anterior.
Acepto que mis mediciones de presión arterial se envíen al equipo del estudio.
Sé que puedo dejar el estudio en cualquier momento.""",
    },
    "fr": {
        "title": "Consentement pour participer à {name}",
        "body": """Cette étude porte sur la tension artérielle mesurée à domicile.

Si vous participez, vous mesurez votre tension artérielle avec votre tensiomètre Withings deux fois
le matin et deux fois le soir, pendant toute la durée de l'étude. Vos mesures (tension artérielle,
pouls, heure de chaque mesure et appareil utilisé) sont envoyées automatiquement à l'équipe de l'étude.

L'équipe de l'étude voit un code d'étude, pas votre nom. Vous pouvez quitter l'étude à tout moment,
sans donner de raison, depuis votre page personnelle ou en contactant l'équipe de l'étude.

Ceci est un texte de démonstration : l'étude de démonstration n'est pas une vraie étude.""",
        "statements": """J'ai lu et compris les informations ci-dessus.
J'accepte que mes mesures de tension artérielle soient envoyées à l'équipe de l'étude.
Je sais que je peux quitter l'étude à tout moment.""",
    },
}
