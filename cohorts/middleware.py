"""Every staff account must have TOTP before it may use the admin."""

from allauth.mfa.models import Authenticator
from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse


class StaffTwoFactorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(reverse("admin:index")):
            user = request.user
            if (
                user.is_authenticated
                and user.is_staff
                and not Authenticator.objects.filter(user_id=user.pk, type=Authenticator.Type.TOTP).exists()
            ):
                messages.warning(
                    request,
                    "Set up two-factor authentication (an authenticator app) before using the admin.",
                )
                return redirect("mfa_activate_totp")
        return self.get_response(request)
