"""Portal forms of the accounts app: login steps, profile, tokens, password confirmation, sign-up, new users."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import User
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.utils.translation import gettext_lazy as _

from accounts.services import TOKEN_NAME_MAX_LENGTH

EXPIRY_CHOICES = [
    ("", _("Never")),
    ("7", _("In 7 days")),
    ("30", _("In 30 days")),
    ("90", _("In 90 days")),
    ("365", _("In a year")),
]


class LoginForm(forms.Form):
    username = forms.CharField(label=_("Username"), max_length=150)
    password = forms.CharField(label=_("Password"), strip=False, max_length=4096, widget=forms.PasswordInput)


class OtpForm(forms.Form):
    token = forms.CharField(
        label=_("Code"),
        max_length=20,
        help_text=_("The 6-digit code from your authenticator app, or one of your recovery codes."),
    )


class ProfileForm(forms.Form):
    language = forms.ChoiceField(
        label=_("Language"), choices=[("", _("Site default")), *settings.LANGUAGES], required=False
    )


class TokenCreateForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=TOKEN_NAME_MAX_LENGTH, help_text=_("What will use it."))
    expires_in_days = forms.TypedChoiceField(
        label=_("Expires"), choices=EXPIRY_CHOICES, coerce=int, empty_value=None, required=False
    )


class ConfirmPasswordForm(forms.Form):
    """Asks for the current password before a sensitive change (2FA, recovery codes)."""

    password = forms.CharField(label=_("Current password"), strip=False, widget=forms.PasswordInput)

    def __init__(self, *args: Any, user: User, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise forms.ValidationError(_("That is not your current password."))
        return password


class SignupForm(UserCreationForm):
    email = forms.EmailField(label=_("Email"), required=False, help_text=_("Only for resetting your password."))

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")


class UserCreateForm(forms.Form):
    """Staff add a colleague: the password is the first one; they change it under Account › Password."""

    username = forms.CharField(
        label=_("Username"),
        max_length=150,
        validators=[UnicodeUsernameValidator()],
        help_text=_("Letters, digits and @/./+/-/_ only."),
    )
    email = forms.EmailField(label=_("Email"), required=False, help_text=_("Only for resetting the password."))
    password = forms.CharField(
        label=_("Initial password"),
        strip=False,
        max_length=4096,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_("Give it to them in person or over a secure channel."),
    )
    is_staff = forms.BooleanField(label=_("Staff (monitoring, admin, adding users)"), required=False)
