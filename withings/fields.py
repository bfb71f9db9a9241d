"""The encrypted field lives in cohorts (the bottom layer); kept importable here for migrations."""

from cohorts.fields import EncryptedTextField

__all__ = ["EncryptedTextField"]
