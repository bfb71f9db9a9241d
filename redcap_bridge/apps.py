from django.apps import AppConfig


class RedcapBridgeConfig(AppConfig):
    name = "redcap_bridge"
    verbose_name = "REDCap"
