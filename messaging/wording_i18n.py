# ruff: noqa: E501 — message texts read best unbroken
"""The default wording of every reason in Spanish and French (English is in ``wording``).

Plain, short and accurate: "presión arterial" / "tension artérielle"; the formal "usted" / "vous".
The placeholders are the English ones, so a study's own versions can be checked the same way.
SMS texts avoid ``{window}`` (its value is an English word): the times say when.
"""

from __future__ import annotations

from .models import Reason

SMS: dict[str, dict[str, str]] = {
    "es": {
        Reason.STATUS_LINK: "{study}: su página privada del estudio es {link} - no comparta este enlace.",
        Reason.PROMPT: "{study}: es hora de tomarse la presión arterial ({window_start}-{window_end}).",
        Reason.NO_DATA: (
            "{study}: no hemos recibido mediciones desde hace {days} días. Por favor, tómese la presión "
            "con el tensiómetro. Preguntas: {team_contact}"
        ),
        Reason.SYNC_NUDGE: (
            "{study}: su tensiómetro no ha enviado datos últimamente. Acérquelo a su wifi para que se "
            "envíen sus mediciones. No hace falta volver a medir."
        ),
        Reason.RELINK: "{study}: su tensiómetro ya no está vinculado. Vuelva a vincularlo aquí: {link}",
        Reason.LOW_BATTERY: "{study}: la batería de su tensiómetro está baja. Cárguela (cable micro-USB).",
        Reason.WITHDRAWAL: (
            "{study}: ha dejado el estudio. No recibirá más mensajes. Preguntas: {team_contact}"
        ),
        Reason.ONE_OFF: "{study}: un mensaje del equipo del estudio. Preguntas: {team_contact}",
        Reason.HELP: (
            "{study}: para obtener ayuda, contacte con el equipo del estudio: {team_contact}. "
            "Responda STOP para no recibir más mensajes."
        ),
        Reason.OPT_OUT: "{study}: no recibirá más mensajes. Responda START para volver a recibirlos.",
        Reason.OPT_IN: "{study}: vuelve a recibir mensajes. Responda STOP para dejar de recibirlos.",
        Reason.SAFETY: "{study}: {safety_message} Equipo del estudio: {team_contact}",
    },
    "fr": {
        Reason.STATUS_LINK: "{study} : votre page personnelle de l'étude est {link} - gardez ce lien pour vous.",
        Reason.PROMPT: "{study} : c'est l'heure de prendre votre tension artérielle ({window_start}-{window_end}).",
        Reason.NO_DATA: (
            "{study} : nous n'avons reçu aucune mesure depuis {days} jours. Merci de prendre votre "
            "tension avec le tensiomètre. Questions : {team_contact}"
        ),
        Reason.SYNC_NUDGE: (
            "{study} : votre tensiomètre n'a rien envoyé récemment. Approchez-le de votre wifi pour "
            "que vos mesures soient transmises. Inutile de mesurer à nouveau."
        ),
        Reason.RELINK: "{study} : votre tensiomètre n'est plus associé. Associez-le à nouveau ici : {link}",
        Reason.LOW_BATTERY: "{study} : la batterie de votre tensiomètre est faible. Rechargez-la (câble micro-USB).",
        Reason.WITHDRAWAL: (
            "{study} : vous avez quitté l'étude. Vous ne recevrez plus de messages. Questions : {team_contact}"
        ),
        Reason.ONE_OFF: "{study} : un message de l'équipe de l'étude. Questions : {team_contact}",
        Reason.HELP: (
            "{study} : pour de l'aide, contactez l'équipe de l'étude : {team_contact}. "
            "Répondez STOP pour ne plus recevoir de SMS."
        ),
        Reason.OPT_OUT: "{study} : vous ne recevrez plus de SMS. Répondez START pour les recevoir à nouveau.",
        Reason.OPT_IN: "{study} : les SMS sont réactivés. Répondez STOP pour les arrêter.",
        Reason.SAFETY: "{study} : {safety_message} Équipe de l'étude : {team_contact}",
    },
}

EMAIL: dict[str, dict[str, tuple[str, str]]] = {
    "es": {
        Reason.STATUS_LINK: (
            "{study}: su página privada del estudio",
            "Hola:\n\nGracias por participar en {study}. Su página privada del estudio es:\n\n{link}\n\n"
            "Muestra sus mediciones y cómo contactar con el equipo. No comparta este enlace.\n\n"
            "El equipo del estudio\n{team_contact}",
        ),
        Reason.PROMPT: (
            "{study}: es hora de tomarse la presión arterial",
            "Hola:\n\nEs hora de tomarse la presión arterial (entre las {window_start} y las "
            "{window_end}).\n\nEl equipo del estudio\n{team_contact}",
        ),
        Reason.NO_DATA: (
            "{study}: no hemos recibido mediciones desde hace {days} días",
            "Hola:\n\nNo hemos recibido ninguna medición suya desde hace {days} días. Por favor, tómese "
            "la presión con el tensiómetro cuando pueda.\n\nSu página del estudio: {link}\n\n"
            "El equipo del estudio\n{team_contact}",
        ),
        Reason.SYNC_NUDGE: (
            "{study}: acerque su tensiómetro a la wifi",
            "Hola:\n\nSu tensiómetro no ha enviado datos últimamente, así que las mediciones que tomó "
            "pueden seguir guardadas en él. Acérquelo a su wifi para que se envíen. No hace falta volver "
            "a medir.\n\nEl equipo del estudio\n{team_contact}",
        ),
        Reason.RELINK: (
            "{study}: vuelva a vincular su tensiómetro",
            "Hola:\n\nSu tensiómetro ya no está vinculado al estudio, así que sus mediciones no nos "
            "llegan. Vuelva a vincularlo aquí:\n\n{link}\n\nEl equipo del estudio\n{team_contact}",
        ),
        Reason.LOW_BATTERY: (
            "{study}: cargue su tensiómetro",
            "Hola:\n\nLa batería de su tensiómetro está baja. Cárguela con su cable micro-USB.\n\n"
            "El equipo del estudio\n{team_contact}",
        ),
        Reason.WITHDRAWAL: (
            "{study}: ha dejado el estudio",
            "Hola:\n\nLe confirmamos que ha dejado {study}. No recibirá más mensajes nuestros.\n\n"
            "Si tiene preguntas: {team_contact}\n\nEl equipo del estudio",
        ),
        Reason.ONE_OFF: (
            "{study}: un mensaje del equipo del estudio",
            "Hola:\n\nUn mensaje del equipo del estudio.\n\nEl equipo del estudio\n{team_contact}",
        ),
        Reason.HELP: (
            "{study}: cómo contactar con el equipo del estudio",
            "Hola:\n\nPuede contactar con el equipo del estudio en {team_contact}.\n\nEl equipo del estudio",
        ),
        Reason.OPT_OUT: (
            "{study}: se ha dado de baja",
            "Hola:\n\nNo recibirá más correos de {study}.\n\nEl equipo del estudio\n{team_contact}",
        ),
        Reason.OPT_IN: (
            "{study}: vuelve a recibir mensajes",
            "Hola:\n\nVolverá a recibir mensajes de {study}.\n\nEl equipo del estudio\n{team_contact}",
        ),
        Reason.SAFETY: (
            "{study}: sobre su última medición de presión arterial",
            "Hola:\n\n{safety_message}\n\nEl equipo del estudio\n{team_contact}",
        ),
    },
    "fr": {
        Reason.STATUS_LINK: (
            "{study} : votre page personnelle de l'étude",
            "Bonjour,\n\nMerci de participer à {study}. Votre page personnelle de l'étude est :\n\n{link}\n\n"
            "Elle montre vos mesures et comment joindre l'équipe. Gardez ce lien pour vous.\n\n"
            "L'équipe de l'étude\n{team_contact}",
        ),
        Reason.PROMPT: (
            "{study} : c'est l'heure de prendre votre tension",
            "Bonjour,\n\nC'est l'heure de prendre votre tension artérielle (entre {window_start} et "
            "{window_end}).\n\nL'équipe de l'étude\n{team_contact}",
        ),
        Reason.NO_DATA: (
            "{study} : aucune mesure reçue depuis {days} jours",
            "Bonjour,\n\nNous n'avons reçu aucune mesure de votre part depuis {days} jours. Merci de "
            "prendre votre tension avec le tensiomètre dès que possible.\n\nVotre page de l'étude : {link}\n\n"
            "L'équipe de l'étude\n{team_contact}",
        ),
        Reason.SYNC_NUDGE: (
            "{study} : approchez votre tensiomètre du wifi",
            "Bonjour,\n\nVotre tensiomètre n'a rien envoyé récemment : les mesures prises y sont peut-être "
            "encore. Approchez-le de votre wifi pour qu'elles soient transmises. Inutile de mesurer à "
            "nouveau.\n\nL'équipe de l'étude\n{team_contact}",
        ),
        Reason.RELINK: (
            "{study} : associez à nouveau votre tensiomètre",
            "Bonjour,\n\nVotre tensiomètre n'est plus associé à l'étude : vos mesures ne peuvent pas nous "
            "parvenir. Associez-le à nouveau ici :\n\n{link}\n\nL'équipe de l'étude\n{team_contact}",
        ),
        Reason.LOW_BATTERY: (
            "{study} : rechargez votre tensiomètre",
            "Bonjour,\n\nLa batterie de votre tensiomètre est faible. Rechargez-la avec son câble "
            "micro-USB.\n\nL'équipe de l'étude\n{team_contact}",
        ),
        Reason.WITHDRAWAL: (
            "{study} : vous avez quitté l'étude",
            "Bonjour,\n\nNous vous confirmons que vous avez quitté {study}. Vous ne recevrez plus de "
            "messages de notre part.\n\nPour toute question : {team_contact}\n\nL'équipe de l'étude",
        ),
        Reason.ONE_OFF: (
            "{study} : un message de l'équipe de l'étude",
            "Bonjour,\n\nUn message de l'équipe de l'étude.\n\nL'équipe de l'étude\n{team_contact}",
        ),
        Reason.HELP: (
            "{study} : comment joindre l'équipe de l'étude",
            "Bonjour,\n\nVous pouvez joindre l'équipe de l'étude : {team_contact}.\n\nL'équipe de l'étude",
        ),
        Reason.OPT_OUT: (
            "{study} : vous êtes désabonné(e)",
            "Bonjour,\n\nVous ne recevrez plus d'e-mails de {study}.\n\nL'équipe de l'étude\n{team_contact}",
        ),
        Reason.OPT_IN: (
            "{study} : les messages sont réactivés",
            "Bonjour,\n\nVous recevrez à nouveau les messages de {study}.\n\nL'équipe de l'étude\n{team_contact}",
        ),
        Reason.SAFETY: (
            "{study} : à propos de votre dernière mesure de tension",
            "Bonjour,\n\n{safety_message}\n\nL'équipe de l'étude\n{team_contact}",
        ),
    },
}
