"""The permission policy: which role may use which capability, in one table.

Every staff page, API, WebSocket consumer and admin page asks this module, and nothing else,
whether the person in front of it may read or write:

=================  =============  ======  ==========  ===========  =======  ==============
role               authenticated  portal  staff.read  staff.write  reports  accounts.admin
=================  =============  ======  ==========  ===========  =======  ==============
anonymous          —              —       —           —            —        —
member             yes            yes     —           —            —        —
auditor            yes            —       yes         —            yes      —
staff_without_mfa  —              —       —           —            —        —
staff              yes            —       yes         yes          yes      —
superuser          yes            yes     yes         yes          yes      yes
=================  =============  ======  ==========  ===========  =======  ==============

(``public`` — the login page, device ingest with its own authentication — is everyone's.)
Portal pages are read by any signed-in role (another person's data answers 404: the selectors
start from the logged-in member) and written only by members.

- A staff or auditor session counts as its role only once it has passed TOTP in this very
  session (`apps.accounts.mfa`); before that it is `staff_without_mfa` and may do nothing.
- Auditors read everything staff read and write nothing, anywhere: every unsafe HTTP method on
  a staff page, every admin add/change/delete and every admin action needs ``staff.write``.
- Views declare what they need with the decorators below; the permission-matrix test
  (`tests/test_permission_matrix.py`) walks the URL conf, every ModelAdmin with its actions and
  every WebSocket route and fails for one that declares nothing.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable
from functools import wraps
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.views import redirect_to_login
from django.core.cache import cache
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from import_export.admin import ExportMixin, ImportMixin
from import_export.formats.base_formats import CSV, XLSX
from import_export.resources import modelresource_factory
from import_export.tmp_storages import CacheStorage
from rest_framework.permissions import BasePermission
from tablib import Dataset

from apps.accounts.mfa import StaffMFAState, mfa_state_for
from apps.audit.events import AuditEvent
from apps.audit.services import audit_log_write
from apps.core.spreadsheets import spreadsheet_cell

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Role(enum.StrEnum):
    ANONYMOUS = "anonymous"
    MEMBER = "member"
    AUDITOR = "auditor"
    STAFF_WITHOUT_MFA = "staff_without_mfa"
    STAFF = "staff"
    SUPERUSER = "superuser"


class Capability(enum.StrEnum):
    AUTHENTICATED = "authenticated"  # any signed-in role (staff and auditors after MFA)
    PORTAL = "portal"  # a member's own pages and API, and every write from them
    STAFF_READ = "staff.read"  # staff pages, the admin, live staff feeds: reading
    STAFF_WRITE = "staff.write"  # anything that changes state from a staff page or the admin
    REPORTS = "reports"  # compliance, carbon and settlement reports; the certificate registry
    ACCOUNT_ADMIN = "accounts.admin"  # privileged accounts, MFA enrollment and reset
    PUBLIC = "public"  # anyone, e.g. the login page and device ingest (own authentication)


POLICY: dict[Role, frozenset[Capability]] = {
    Role.ANONYMOUS: frozenset({Capability.PUBLIC}),
    Role.MEMBER: frozenset({Capability.PUBLIC, Capability.AUTHENTICATED, Capability.PORTAL}),
    Role.AUDITOR: frozenset(
        {Capability.PUBLIC, Capability.AUTHENTICATED, Capability.STAFF_READ, Capability.REPORTS}
    ),
    Role.STAFF_WITHOUT_MFA: frozenset({Capability.PUBLIC}),
    Role.STAFF: frozenset(
        {
            Capability.PUBLIC,
            Capability.AUTHENTICATED,
            Capability.STAFF_READ,
            Capability.STAFF_WRITE,
            Capability.REPORTS,
        }
    ),
    Role.SUPERUSER: frozenset(Capability),
}


def user_in_auditor_group(user: Any) -> bool:
    """Whether a logged-in user is in the auditor group; read once per user object (request)."""
    return _is_auditor(user)


def _is_auditor(user: Any) -> bool:
    cached = getattr(user, "_policy_is_auditor", None)
    if cached is None:
        cached = user.groups.filter(name="auditor").exists()
        user._policy_is_auditor = cached
    return bool(cached)


def role_of(user: Any, session: Any) -> Role:
    """The policy role of a user in a given session (HTTP or WebSocket)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return Role.ANONYMOUS
    if not user.is_staff and not user.is_superuser:
        return Role.AUDITOR if _is_auditor(user) else Role.MEMBER
    if mfa_state_for(user, session) is not StaffMFAState.SATISFIED:
        return Role.STAFF_WITHOUT_MFA
    if _is_auditor(user):
        return Role.AUDITOR
    return Role.SUPERUSER if user.is_superuser else Role.STAFF


def allows(role: Role, capability: Capability) -> bool:
    return capability in POLICY[role]


def request_role(request: HttpRequest) -> Role:
    cached = getattr(request, "_policy_role", None)
    if cached is None:
        cached = role_of(request.user, request.session)
        request._policy_role = cached
    return cached


def request_allows(request: HttpRequest, capability: Capability) -> bool:
    return allows(request_role(request), capability)


def staff_capability(method: str) -> Capability:
    """What a staff page needs for an HTTP method: reading, or writing."""
    return Capability.STAFF_READ if method.upper() in SAFE_METHODS else Capability.STAFF_WRITE


# --- views ------------------------------------------------------------------------------------

ViewFunc = Callable[..., HttpResponse]


def _guard(read: Capability, write: Capability) -> Callable[[ViewFunc], ViewFunc]:
    def decorator(view: ViewFunc) -> ViewFunc:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            needed = read if request.method in SAFE_METHODS else write
            role = request_role(request)
            if not allows(role, needed):
                if role is Role.ANONYMOUS:
                    return redirect_to_login(request.get_full_path())
                raise PermissionDenied(f"Your role ({role}) may not do this ({needed}).")
            return view(request, *args, **kwargs)

        wrapped.policy = (read, write)  # type: ignore[attr-defined]
        return wrapped

    return decorator


#: Portal pages: any signed-in role reads (selectors show only the member's own data), only
#: members write.
portal_view = _guard(Capability.AUTHENTICATED, Capability.PORTAL)
#: Staff pages: auditors read, staff write; staff without MFA, members and anonymous are refused.
staff_view = _guard(Capability.STAFF_READ, Capability.STAFF_WRITE)
#: Reports and the certificate registry: staff and auditors read, nobody writes.
reports_view = _guard(Capability.REPORTS, Capability.STAFF_WRITE)


def public_view(view: ViewFunc) -> ViewFunc:
    """Open to anyone (the view authenticates by other means, or there is nothing to protect)."""
    view.policy = (Capability.PUBLIC, Capability.PUBLIC)  # type: ignore[attr-defined]
    return view


#: Views of third-party apps with their own authentication flows (login, logout, MFA stages):
#: public in the sense of this policy; the matrix test checks every other route declares one.
EXTERNAL_PUBLIC_VIEW_MODULES = ("allauth.",)


def view_policy(callback: Any) -> tuple[Capability, Capability] | None:
    """The (read, write) capabilities a URL conf callback declares, or None."""
    declared = getattr(callback, "policy", None)
    if declared is not None:
        return declared
    view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if view_class is not None:
        declared = getattr(view_class, "policy", None)
        if declared is not None:
            return declared
        initkwargs = (
            getattr(callback, "initkwargs", None)
            or getattr(callback, "view_initkwargs", None)
            or {}
        )
        classes = list(
            initkwargs.get("permission_classes")
            or getattr(view_class, "permission_classes", ())
            or ()
        )
        policies = [getattr(c, "policy", None) for c in classes]
        if len(policies) == 1 and policies[0] is not None:
            return policies[0]
    if getattr(callback, "__module__", "").startswith(EXTERNAL_PUBLIC_VIEW_MODULES):
        return (Capability.PUBLIC, Capability.PUBLIC)
    return None


# --- DRF --------------------------------------------------------------------------------------


class _PolicyPermission(BasePermission):
    read: Capability
    write: Capability

    def has_permission(self, request: Any, view: Any) -> bool:
        needed = self.read if request.method in SAFE_METHODS else self.write
        return allows(request_role(request._request), needed)


def policy_permission(read: Capability, write: Capability) -> type[BasePermission]:
    """A DRF permission class for the given read and write capabilities."""
    return type(
        f"Policy_{read}_{write}".replace(".", "_"),
        (_PolicyPermission,),
        {"read": read, "write": write, "policy": (read, write)},
    )


MemberApiPermission = policy_permission(Capability.AUTHENTICATED, Capability.PORTAL)
AuthenticatedApiPermission = policy_permission(Capability.AUTHENTICATED, Capability.AUTHENTICATED)
StaffApiPermission = policy_permission(Capability.STAFF_READ, Capability.STAFF_WRITE)
PublicApiPermission = policy_permission(Capability.PUBLIC, Capability.PUBLIC)


# --- WebSocket --------------------------------------------------------------------------------


async def scope_allows(scope: dict[str, Any], capability: Capability) -> bool:
    """Whether a WebSocket connection's user, in its session, has `capability`."""
    role = await sync_to_async(role_of)(scope.get("user"), scope.get("session"))
    return allows(role, capability)


# --- admin ------------------------------------------------------------------------------------


class PolicyExportMixin(ExportMixin):
    """Every changelist exports what it shows (its filters and search) as CSV or XLSX.

    - Export is a read: ``staff.read`` (auditors too). Every export is audit-logged
      (``admin_list.exported``: who, which list, which filters, how many rows).
    - The columns are the list's own model columns (``list_display``) and the id, never the
      whole row: secrets and internals a list does not show (salts, token hashes, nonces) are
      not exported. An admin may name other columns with ``export_resource_classes``.
    - Every text cell goes through `apps.core.spreadsheets.spreadsheet_cell` (formula text gets
      a leading apostrophe). django-import-export's own ``IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT``
      only drops a leading ``=`` and is not used.
    - The file is built in memory, so a list longer than ``settings.ADMIN_EXPORT_MAX_ROWS`` rows
      is refused before anything is read, with a message asking for a narrower filter.
    """

    export_formats = [CSV, XLSX]
    export_resource_classes: list[type] | None = None

    def has_export_permission(self, request: HttpRequest) -> bool:
        return request_allows(request, Capability.STAFF_READ)

    def export_columns(self, request: HttpRequest) -> list[str]:
        opts = self.model._meta  # type: ignore[attr-defined]
        columns = [opts.pk.name]
        for name in self.get_list_display(request):  # type: ignore[attr-defined]
            if not isinstance(name, str) or name in columns:
                continue
            try:
                field = opts.get_field(name)
            except FieldDoesNotExist:
                continue
            if field.concrete and not field.many_to_many:
                columns.append(name)
        return columns

    def get_export_resource_classes(self, request: HttpRequest) -> list[type]:
        if self.export_resource_classes:
            return list(self.export_resource_classes)
        return [
            modelresource_factory(
                self.model,  # type: ignore[attr-defined]
                meta_options={"fields": self.export_columns(request)},
            )
        ]

    def get_data_for_export(self, request: HttpRequest, queryset: Any, **kwargs: Any) -> Dataset:
        data = super().get_data_for_export(request, queryset, **kwargs)
        escaped = Dataset(title=data.title)
        escaped.headers = [spreadsheet_cell(h) for h in (data.headers or [])]
        for row in data:
            escaped.append([spreadsheet_cell(cell) for cell in row])
        return escaped

    def _do_file_export(
        self, file_format: Any, request: HttpRequest, queryset: Any, **kwargs: Any
    ) -> HttpResponse:
        # Both export paths (the export page and the changelist action) end here.
        cap = int(settings.ADMIN_EXPORT_MAX_ROWS)
        rows = queryset.count()
        if rows > cap:
            self.message_user(  # type: ignore[attr-defined]
                request,
                f"Nothing was exported: the list has {rows:,} rows, more than the {cap:,} an "
                "export may hold. Narrow it with the filters, the date or a search, then export "
                "again.",
                messages.ERROR,
            )
            opts = self.model._meta  # type: ignore[attr-defined]
            changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
            query = request.GET.urlencode()
            return HttpResponseRedirect(f"{changelist}?{query}" if query else changelist)
        return super()._do_file_export(file_format, request, queryset, **kwargs)

    def get_export_data(
        self, file_format: Any, request: HttpRequest, queryset: Any, **kwargs: Any
    ) -> Any:
        export = super().get_export_data(file_format, request, queryset, **kwargs)
        opts = self.model._meta  # type: ignore[attr-defined]
        audit_log_write(
            event=AuditEvent.ADMIN_LIST_EXPORTED,
            actor=request.user,
            target_type=opts.label_lower,
            details={
                "format": file_format.get_title(),
                "rows": queryset.count(),
                "filters": request.GET.urlencode()[:500],
            },
        )
        return export


class PolicyImportMixin(ImportMixin):
    """Import from CSV/XLSX for the admins that name an import resource (``resource_classes``).

    Import is a write: ``staff.write`` only. The upload is previewed as a dry run (rows checked by
    the same services as a single entry, then rolled back); the confirmed import runs again in
    one transaction and keeps nothing if any row fails (``rollback_on_validation_errors``), so a
    file imports whole or not at all. Each row's problem is shown with its line number."""

    import_formats = [CSV, XLSX]
    # Both buttons (this mixin comes before PolicyModelAdmin, whose export template it replaces).
    import_export_change_list_template = "admin/import_export/change_list_import_export.html"
    #: Larger files are refused before they are read.
    import_max_bytes = 5 * 1024 * 1024

    def has_import_permission(self, request: HttpRequest) -> bool:
        return request_allows(request, Capability.STAFF_WRITE)

    def import_action(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        upload = request.FILES.get("import_file")
        if upload is not None and upload.size > self.import_max_bytes:
            if not self.has_import_permission(request):
                raise PermissionDenied
            self.message_user(  # type: ignore[attr-defined]
                request,
                f"The file is larger than {self.import_max_bytes // (1024 * 1024)} MB: "
                "split it and import the parts.",
                messages.ERROR,
            )
            return HttpResponseRedirect(request.get_full_path())
        return super().import_action(request, **kwargs)

    def process_import(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        """The confirmation names a pending upload (a random cache key, see
        IMPORT_EXPORT_TMP_STORAGE_CLASS); an unknown, expired or already imported one is refused
        in words, and nothing is read."""
        if not self.has_import_permission(request):
            raise PermissionDenied
        name = os.path.basename(request.POST.get("import_file_name", ""))
        if request.method == "POST" and (
            not name or cache.get(CacheStorage.CACHE_PREFIX + name) is None
        ):
            self.message_user(  # type: ignore[attr-defined]
                request,
                "Nothing was imported: this upload has expired or was already imported. "
                "Upload the file again.",
                messages.ERROR,
            )
            return HttpResponseRedirect(request.path.replace("process_import/", "import/"))
        return super().process_import(request, **kwargs)

    def process_dataset(self, dataset: Any, form: Any, request: HttpRequest, **kwargs: Any) -> Any:
        kwargs.setdefault("rollback_on_validation_errors", True)
        return super().process_dataset(dataset, form, request, **kwargs)

    def process_result(self, result: Any, request: HttpRequest) -> HttpResponse:
        if result.has_errors() or result.has_validation_errors():
            problems = [
                f"line {row.number}: "
                + "; ".join(f"{k}: {' '.join(v)}" for k, v in row.error_dict.items())
                for row in result.invalid_rows
            ]
            problems += [
                f"line {err.number}: {err.error}"
                for _number, errors in result.row_errors()
                for err in errors
            ]
            self.message_user(  # type: ignore[attr-defined]
                request,
                "Nothing was imported: " + " | ".join(problems[:20]),
                messages.ERROR,
            )
            return HttpResponseRedirect(request.path.replace("process_import/", "import/"))
        return super().process_result(result, request)


class PolicyModelAdmin(PolicyExportMixin, admin.ModelAdmin):
    """Base of every ModelAdmin: Django's model permissions AND the policy.

    - viewing needs ``staff.read`` (auditors see, staff without MFA do not);
    - add, change, delete and every action need ``staff.write``: auditors get no action choices,
      no buttons, and a crafted action POST is answered 403 with nothing run;
    - ``service_owned = True`` marks a model whose rows only services write (trades, settlement
      lines, clearing results…): the admin shows them read-only to everyone;
    - every changelist exports to CSV/XLSX (`PolicyExportMixin`: a read, audit-logged and
      formula-escaped); admins with an import resource add `PolicyImportMixin` (a write).
    """

    service_owned = False

    def _may(self, request: HttpRequest, capability: Capability) -> bool:
        return request_allows(request, capability)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._may(request, Capability.STAFF_READ) and super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may(request, Capability.STAFF_READ) and super().has_view_permission(
            request, obj
        )

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        if self.service_owned or not self._may(request, Capability.STAFF_WRITE):
            return False
        return super().has_add_permission(request, *args)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if self.service_owned or not self._may(request, Capability.STAFF_WRITE):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if self.service_owned or not self._may(request, Capability.STAFF_WRITE):
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        if not self._may(request, Capability.STAFF_WRITE):
            return {}
        return super().get_actions(request)

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        if (
            request.method == "POST"
            and "action" in request.POST
            and not self._may(request, Capability.STAFF_WRITE)
        ):
            raise PermissionDenied("Your role may not run admin actions.")
        return super().changelist_view(request, extra_context)


class PolicyInline:
    """Mixin for inlines: writes need ``staff.write``."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request_allows(request, Capability.STAFF_WRITE) and super().has_add_permission(  # type: ignore[misc]
            request, obj
        )

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request_allows(request, Capability.STAFF_WRITE) and super().has_change_permission(
            request, obj
        )  # type: ignore[misc]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request_allows(request, Capability.STAFF_WRITE) and super().has_delete_permission(
            request, obj
        )  # type: ignore[misc]


def admin_site_apply_policy(site: admin.AdminSite | None = None) -> None:
    """Put every registered ModelAdmin (third-party ones too: auth groups, allauth e-mail
    addresses and authenticators, django-axes attempts) and its inlines under the policy.

    Called once from AccountsConfig.ready(), after the admin has autodiscovered every app."""
    site = site or admin.site
    for model, model_admin in list(site._registry.items()):
        if isinstance(model_admin, PolicyModelAdmin):
            continue
        original = type(model_admin)
        inlines = [
            inline
            if issubclass(inline, PolicyInline)
            else type(inline.__name__, (PolicyInline, inline), {"__module__": inline.__module__})
            for inline in original.inlines
        ]
        wrapped = type(
            original.__name__,
            (PolicyModelAdmin, original),
            {"__module__": original.__module__, "inlines": inlines},
        )
        site.unregister(model)
        site.register(model, wrapped)
