"""The one tenancy helper. Every study-owned queryset, admin class, view and export goes through
`scoped()`. Fail-closed: anonymous users, inactive users and staff without a membership get nothing.

A model opts in by declaring ``TENANT_PATHS = (study_path, site_path_or_None)``: the lookup from the
model to its study id and to its site id. A membership restricted to a site sees only rows whose
site is that site; an unrestricted membership sees the whole study. Superusers operate the
installation and see everything.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ImproperlyConfigured
from django.db.models import Model, Q, QuerySet

from .models import Role, StudyMembership

ALL_ROLES = frozenset(Role.values)
EDITORS = frozenset({Role.COORDINATOR})


def tenant_paths(model: type[Model]) -> tuple[str, str | None]:
    paths = getattr(model, "TENANT_PATHS", None)
    if paths is None:
        raise ImproperlyConfigured(f"{model.__name__} does not declare TENANT_PATHS")
    return paths


def memberships(user, roles: Iterable[str] | None = None) -> QuerySet[StudyMembership]:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return StudyMembership.objects.none()
    qs = StudyMembership.objects.filter(user_id=user.pk)
    if roles is not None:
        qs = qs.filter(role__in=list(roles))
    return qs


def scope_q(model: type[Model], user, roles: Iterable[str] | None = None) -> Q:
    """A filter for `model` rows visible to `user` with one of `roles` (any role when None)."""
    study_path, site_path = tenant_paths(model)
    granted = memberships(user, roles)
    whole_study = granted.filter(site__isnull=True).values("study_id")
    q = Q(**{f"{study_path}__in": whole_study})
    if site_path is not None:
        q |= Q(**{f"{site_path}__in": granted.filter(site__isnull=False).values("site_id")})
    else:
        # A model without a site (the study itself): a site-restricted member still sees it.
        q |= Q(**{f"{study_path}__in": granted.filter(site__isnull=False).values("study_id")})
    return q


def scoped(qs: QuerySet, user, roles: Iterable[str] | None = None) -> QuerySet:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return qs.none()
    if user.is_superuser:
        return qs
    return qs.filter(scope_q(qs.model, user, roles))


def user_can(user, obj: Model, roles: Iterable[str]) -> bool:
    """True when `user` holds one of `roles` over the study (and site) `obj` belongs to."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.is_superuser:
        return True
    return scoped(type(obj)._default_manager.filter(pk=obj.pk), user, roles).exists()


def has_any_membership(user, roles: Iterable[str] | None = None) -> bool:
    if getattr(user, "is_superuser", False) and user.is_active:
        return True
    return memberships(user, roles).exists()
