"""Every page of the staff admin, found from the admin site's own URL patterns (the site's pages and
each registered model admin's `get_urls()`), so that a page added to the admin is checked without
editing a list. Arguments come from what the given user may see: `<object_id>`/`<pk>` the first row
of that model admin's queryset (scoped to the user), `<slug>` the first of their studies, an app's
label for Django's app index."""

from __future__ import annotations

from django.contrib import admin
from django.test import RequestFactory
from django.urls import NoReverseMatch, URLPattern, URLResolver, reverse
from django.urls.resolvers import RoutePattern

from cohorts.models import Participant, Study
from cohorts.scoping import scoped

# Not pages: sign-out and an import's confirmation are POSTs, the rest answer with JavaScript, JSON,
# a file or a redirect.
NOT_PAGES = {
    "logout",
    "jsi18n",
    "autocomplete",
    "view_on_site",
    "login",
    "cohorts_participant_process_import",
}
NOT_PAGE_SUFFIXES = ("_download", "_progress_json", "_pdf")  # files, not pages


def _patterns(patterns):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            continue  # each model admin's include: walked from the registry, where its model is known
        if isinstance(pattern, URLPattern) and pattern.name:
            yield pattern


def _arguments(pattern: URLPattern) -> list[str]:
    if isinstance(pattern.pattern, RoutePattern):
        return list(pattern.pattern.converters)
    return list(pattern.pattern.regex.groupindex)


def staff_pages(user) -> dict[str, str]:
    """{URL name (with its argument): path} of every GET page of the admin `user` may open."""
    request = RequestFactory().get("/admin/")
    request.user = user
    study = scoped(Study.objects.order_by("pk"), user).first()
    pages: dict[str, str] = {}

    def add(pattern: URLPattern, model_admin=None) -> None:
        name = pattern.name
        if name in NOT_PAGES or name.endswith(NOT_PAGE_SUFFIXES):
            return
        values: list[dict] = []
        arguments = _arguments(pattern)
        if not arguments:
            values = [{}]
        elif arguments == ["app_label"]:
            labels = sorted({m._meta.app_label for m, a in admin.site._registry.items()
                             if a.has_module_permission(request)})  # fmt: skip
            values = [{"app_label": label} for label in labels]
        elif arguments == ["slug"]:
            values = [{"slug": study.slug}] if study is not None else []
        elif arguments == ["participant_id"]:  # participant pages of other apps (a one-off message)
            first = scoped(Participant.objects.order_by("pk"), user).values_list("pk", flat=True).first()
            values = [{"participant_id": first}] if first is not None else []
        elif len(arguments) == 1 and arguments[0] in ("object_id", "pk", "id") and model_admin is not None:
            first = model_admin.get_queryset(request).order_by("pk").values_list("pk", flat=True).first()
            values = [{arguments[0]: first}] if first is not None else []
        else:
            raise AssertionError(f"{name}: no sample value for {arguments}; teach staff_pages about it")
        for kwargs in values:
            try:
                url = reverse(f"admin:{name}", kwargs=kwargs)
            except NoReverseMatch:
                continue
            pages[f"{name}({','.join(str(v) for v in kwargs.values())})" if kwargs else name] = url

    for pattern in _patterns(admin.site.get_urls()):
        add(pattern)
    for model_admin in admin.site._registry.values():
        if not model_admin.has_module_permission(request):
            continue  # the admin answers 403 to each of its pages: nothing for axe to see
        for pattern in _patterns(model_admin.get_urls()):
            add(pattern, model_admin)
    return pages
