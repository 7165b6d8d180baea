"""Shapes of the accounts API: token requests and listings, sign-up, and the /me/ summary."""

from rest_framework import serializers

from accounts.services import TOKEN_NAME_MAX_LENGTH
from imagegen import fields

MAX_EXPIRY_DAYS = 3650


class TokenRequestSerializer(serializers.Serializer):
    username = fields.CharField(max_length=150)
    password = fields.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})
    name = fields.CharField(max_length=TOKEN_NAME_MAX_LENGTH, required=False, default="API")
    otp = fields.CharField(
        max_length=20, required=False, default="", help_text="Authenticator or recovery code, if 2FA is on."
    )
    expires_in_days = fields.IntegerField(min_value=1, max_value=MAX_EXPIRY_DAYS, required=False)


class TokenSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    token = serializers.CharField(help_text="The secret. Shown once: store it now.")
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)


class TokenCreateSerializer(serializers.Serializer):
    name = fields.CharField(max_length=TOKEN_NAME_MAX_LENGTH)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, help_text="When the token stops working.")
    expires_in_days = fields.IntegerField(
        min_value=1, max_value=MAX_EXPIRY_DAYS, required=False, help_text="Alternative to expires_at."
    )

    def validate(self, attrs: dict) -> dict:
        if attrs.get("expires_at") and attrs.get("expires_in_days"):
            raise serializers.ValidationError({"expires_at": ["Give expires_at or expires_in_days, not both."]})
        return attrs


class TokenInfoSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    prefix = serializers.CharField(help_text="Public part of the token (ig_<prefix>_…), to recognise it.")
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)
    is_active = serializers.BooleanField()


class SignupSerializer(serializers.Serializer):
    username = serializers.RegexField(r"^[\w.@+-]+\Z", max_length=150)
    email = serializers.EmailField(required=False, default="", allow_blank=True)
    password = fields.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})


class _MeUser(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.CharField()
    is_staff = serializers.BooleanField()
    language = serializers.CharField()
    two_factor_enabled = serializers.BooleanField()
    recovery_codes_left = serializers.IntegerField()


class _DailyQuota(serializers.Serializer):
    limit = serializers.IntegerField()
    used = serializers.IntegerField()
    remaining = serializers.IntegerField()
    resets_at = serializers.DateTimeField()


class _BatchQuota(serializers.Serializer):
    limit = serializers.IntegerField()


class _ActiveQuota(serializers.Serializer):
    limit = serializers.IntegerField()
    used = serializers.IntegerField()
    remaining = serializers.IntegerField()


class _Quotas(serializers.Serializer):
    images_per_day = _DailyQuota()
    images_per_batch = _BatchQuota()
    active_batches = _ActiveQuota()


class _ApiRate(serializers.Serializer):
    limit = serializers.IntegerField()
    period_seconds = serializers.IntegerField()
    used = serializers.IntegerField()
    remaining = serializers.IntegerField()


class _RateLimits(serializers.Serializer):
    api_requests_per_minute = _ApiRate()


class MeSerializer(serializers.Serializer):
    user = _MeUser()
    quotas = _Quotas()
    rate_limits = _RateLimits()
