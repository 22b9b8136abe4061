"""DRF endpoints of accounts: the member's own profile and wallet linking (EIP-4361)."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import Member
from apps.accounts.policy import MemberApiPermission
from apps.accounts.selectors import member_for_user
from apps.accounts.services import wallet_challenge_issue, wallet_link


class MemberProfileSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email", read_only=True)

    class Meta:
        model = Member
        fields = [
            "membership_number",
            "legal_name",
            "email",
            "kind",
            "status",
            "joined",
            "street",
            "postal_code",
            "city",
            "country",
            "wallet_address",
            "wallet_linked_at",
        ]
        read_only_fields = fields


class WalletChallengeInput(serializers.Serializer):
    address = serializers.CharField(max_length=64)


class WalletChallengeOutput(serializers.Serializer):
    message = serializers.CharField(help_text="EIP-4361 message to sign with personal_sign")
    nonce = serializers.CharField()
    address = serializers.CharField(help_text="EIP-55 checksummed")
    expires_at = serializers.DateTimeField()


class WalletLinkInput(serializers.Serializer):
    message = serializers.CharField(max_length=4000, trim_whitespace=False)
    signature = serializers.CharField(max_length=200)


class MeApi(APIView):
    """The logged-in member's own profile (404 for accounts without a membership)."""

    permission_classes = [MemberApiPermission]

    @extend_schema(responses=MemberProfileSerializer)
    def get(self, request: Request) -> Response:
        member = member_for_user(request.user)
        return Response(MemberProfileSerializer(member).data)


class WalletChallengeApi(APIView):
    """Issue a single-use Sign-In with Ethereum message for the given address."""

    permission_classes = [MemberApiPermission]

    InputSerializer = WalletChallengeInput

    @extend_schema(request=WalletChallengeInput, responses={201: WalletChallengeOutput})
    def post(self, request: Request) -> Response:
        payload = self.InputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        message = wallet_challenge_issue(
            user=request.user,
            address=payload.validated_data["address"],
            domain=request.get_host(),
            uri=request.build_absolute_uri(reverse("portal:wallet")),
        )
        return Response(
            {
                "message": message.to_text(),
                "nonce": message.nonce,
                "address": message.address,
                "expires_at": message.expiration_time,
            },
            status=201,
        )


class WalletLinkApi(APIView):
    """Verify the signed message and link the wallet to the member."""

    permission_classes = [MemberApiPermission]

    InputSerializer = WalletLinkInput

    @extend_schema(request=WalletLinkInput, responses=MemberProfileSerializer)
    def post(self, request: Request) -> Response:
        payload = self.InputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        member = wallet_link(
            user=request.user,
            message=payload.validated_data["message"],
            signature=payload.validated_data["signature"],
            domain=request.get_host(),
        )
        return Response(MemberProfileSerializer(member).data)
