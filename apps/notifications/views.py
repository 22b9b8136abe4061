"""Portal pages of notifications: the inbox, the preferences, and the browser's push
subscription endpoint (JSON, called by static/js/portal-push.js)."""

from __future__ import annotations

import json

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts.policy import portal_view
from apps.accounts.selectors import member_for_user
from apps.core.exceptions import ApplicationError
from apps.notifications import selectors, services, vapid
from apps.notifications.models import Channel, Kind


@portal_view
@require_http_methods(["GET", "POST"])
def inbox(request: HttpRequest) -> HttpResponse:
    member = member_for_user(request.user)
    if request.method == "POST":
        ids = [int(i) for i in request.POST.getlist("notification") if i.isdigit()]
        services.notifications_mark_read(
            member=member, notification_ids=ids or None, actor=request.user
        )
        return redirect("notifications:inbox")
    return render(
        request,
        "notifications/inbox.html",
        {
            "notifications": selectors.member_inbox(member=member),
            "unread": selectors.member_unread_count(member=member),
        },
    )


@portal_view
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest) -> HttpResponse:
    member = member_for_user(request.user)
    if request.method == "POST":
        enabled = set()
        for value in request.POST.getlist("pref"):
            kind, _, channel = value.partition(":")
            enabled.add((kind, channel))
        try:
            services.notification_preferences_update(
                member=member, enabled=enabled, actor=request.user
            )
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "Your notification preferences are saved.")
        return redirect("notifications:preferences")
    prefs = selectors.notification_preferences(member=member)
    rows = [
        {
            "kind": kind,
            "label": label,
            "channels": [
                {"value": f"{kind}:{channel}", "label": clabel, "on": prefs[(kind, channel)]}
                for channel, clabel in Channel.choices
            ],
        }
        for kind, label in Kind.choices
    ]
    return render(
        request,
        "notifications/preferences.html",
        {
            "rows": rows,
            "channels": Channel.choices,
            "subscriptions": selectors.member_push_subscriptions(member=member).count(),
            "vapid_public_key": vapid.public_key_b64(),
        },
    )


@portal_view
@require_POST
def push_subscription(request: HttpRequest) -> HttpResponse:
    """Body: the browser's PushSubscription JSON ({endpoint, keys: {p256dh, auth}}), with
    "unsubscribe": true to remove it."""
    member = member_for_user(request.user)
    try:
        data = json.loads(request.body or b"{}")
        endpoint = str(data["endpoint"])
        if data.get("unsubscribe"):
            removed = services.push_subscription_remove(
                member=member, endpoint=endpoint, actor=request.user
            )
            return JsonResponse({"removed": removed})
        keys = data["keys"]
        services.push_subscription_add(
            member=member,
            endpoint=endpoint,
            p256dh=str(keys["p256dh"]),
            auth=str(keys["auth"]),
            actor=request.user,
        )
    except (ValueError, KeyError, TypeError):
        return JsonResponse({"error": "Send the browser's PushSubscription as JSON."}, status=400)
    except ApplicationError as exc:
        return JsonResponse({"error": exc.message}, status=400)
    return JsonResponse({"subscribed": True}, status=201)
