"""Profiles from a CSV file, in the admin: upload, preview and map the columns, then import with progress.

The file is read once at upload and its rows kept in the cache (shared by every web process) for an
hour, in chunks of CHUNK_ROWS; the whole file is checked with the mapping before anything is stored,
then the page posts one chunk after another to `profiles_bulk_upsert`, the API's service, and shows
how far it got. Without JavaScript, one post imports every chunk.
"""

import csv
import io
import re
import secrets
from typing import Any

from django import forms
from django.contrib import messages
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy

from config.common.json_values import unstorable
from journeys.audience.profiles_bulk import profiles_bulk_upsert, profiles_check
from tenants.middleware import active_organization
from tenants.models import Organization
from tenants.roles import Capability

CHUNK_ROWS = 1000
MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_ROWS = 200_000
MAX_COLUMNS = 200
PREVIEW_ROWS = 10
SHOWN_ERRORS = 100
KEPT_S = 3600
TYPES = [
    ("text", pgettext_lazy("attribute type", "text")),
    ("number", pgettext_lazy("attribute type", "number")),
    ("boolean", pgettext_lazy("attribute type", "true/false")),
]
_INTEGER = re.compile(r"[+-]?\d{1,18}")
_TRUE, _FALSE = {"true", "yes", "1", "y"}, {"false", "no", "0", "n"}


class UploadForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("CSV file"),
        help_text=gettext_lazy("UTF-8, a header row first, then one profile per row; at most 50 MB."),
    )


def _key(token: str, part: str = "meta") -> str:
    return f"profile-import:{token}:{part}"


def read_csv(data: bytes) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and each row with its line number; ValueError saying why the file cannot be read."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(_("The file is not UTF-8 text: save it as CSV UTF-8 and upload it again.")) from None
    try:
        dialect = csv.Sniffer().sniff(text[:8192], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        header = [name.strip() for name in next(reader, [])]
        rows = []
        for values in reader:
            if any(value.strip() for value in values):
                rows.append((reader.line_num, values))
            if len(rows) > MAX_ROWS:
                raise ValueError(_("The file has more than %(max)s rows.") % {"max": f"{MAX_ROWS:,}"})
    except csv.Error as exc:
        raise ValueError(_("The file is not CSV: %(why)s") % {"why": exc}) from None
    if not header or not rows:
        raise ValueError(_("The file needs a header row and at least one profile."))
    if len(header) > MAX_COLUMNS:
        raise ValueError(_("The file has more than %(max)s columns.") % {"max": MAX_COLUMNS})
    return header, rows


class MappingForm(forms.Form):
    """Which column holds the external id, and under which name and type each other column is kept."""

    def __init__(self, columns: list[str], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.columns = columns
        guess = next((i for i, c in enumerate(columns) if c.lower().replace(" ", "_") in ("external_id", "id")), 0)
        self.fields["external_id"] = forms.TypedChoiceField(
            label=gettext_lazy("External id column"), coerce=int, initial=guess,
            choices=[(i, name or _("column %(number)s") % {"number": i + 1}) for i, name in enumerate(columns)],
        )  # fmt: skip
        for index, name in enumerate(columns):
            self.fields[f"name_{index}"] = forms.CharField(
                required=False, max_length=200, initial=re.sub(r"\W+", "_", name).strip("_")
            )
            self.fields[f"type_{index}"] = forms.ChoiceField(choices=TYPES, initial="text")

    def rows(self) -> list[dict[str, Any]]:
        """Each column with its fields bound, for the mapping table."""
        return [
            {"index": i, "column": c, "name": self[f"name_{i}"], "type": self[f"type_{i}"]}
            for i, c in enumerate(self.columns)
        ]

    def mapping(self) -> dict[str, Any]:
        """{"external_id": column, "attributes": [[column, name, type], ...]} from the cleaned form."""
        id_column = self.cleaned_data["external_id"]
        attributes = [
            [i, self.cleaned_data[f"name_{i}"].strip(), self.cleaned_data[f"type_{i}"]]
            for i in range(len(self.columns))
            if i != id_column and self.cleaned_data[f"name_{i}"].strip()
        ]
        return {"external_id": id_column, "attributes": attributes}


def _value(text: str, kind: str) -> Any:
    if kind == "number":
        if _INTEGER.fullmatch(text):
            return int(text)
        try:
            number = float(text.replace(",", ".") if text.count(",") == 1 and "." not in text else text)
        except ValueError:
            raise ValueError(_("is not a number")) from None
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError(_("is not a number"))
        return number
    if kind == "boolean":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError(_("is not true or false"))
    return text


def mapped(rows: list[tuple[int, list[str]]], mapping: dict[str, Any]) -> tuple[list[dict], list[str]]:
    """The rows as bulk profiles, and every problem as "Line N: ...": an empty cell sets nothing."""
    items, found = [], []
    for line, values in rows:
        cells = [value.strip() for value in values]
        external_id = cells[mapping["external_id"]] if mapping["external_id"] < len(cells) else ""
        attributes = {}
        for column, name, kind in mapping["attributes"]:
            if column < len(cells) and cells[column]:
                try:
                    attributes[name] = _value(cells[column], kind)
                except ValueError as exc:
                    found.append((line, f"{name}: {exc}"))
        item = {"external_id": external_id, "attributes": attributes}
        if problem := unstorable(item):
            found.append((line, problem))
        items.append(item)
    # One check of the whole chunk, by the API's rules; its paths (profiles[3].external_id) name lines here.
    for where, said in profiles_check(items)[1].items():
        index = re.match(r"profiles\[(\d+)\]", where)
        line = rows[int(index.group(1))][0] if index else rows[0][0]
        found += [(line, f"{_field(where)}: {message}") for message in said]
    found.sort(key=lambda pair: pair[0])
    return items, [_("Line %(line)s: %(problem)s") % {"line": line, "problem": said} for line, said in found]


def _field(where: str) -> str:
    """profiles[0].external_id -> external id, as the page names the columns."""
    name = where.split(".", 1)[1] if "." in where else ""
    return {"external_id": _("external id"), "attributes": _("attributes")}.get(name, name or _("the row"))


class ProfileImportMixin:
    """ProfileAdmin's CSV import pages; only roles that may write profiles (admin, technical) see them."""

    def get_urls(self) -> list:
        wrap = self.admin_site.admin_view
        return [
            path("import/", wrap(self.import_upload_view), name="journeys_profile_import"),
            path("import/<str:token>/", wrap(self.import_map_view), name="journeys_profile_import_map"),
            path("import/<str:token>/chunk/", wrap(self.import_chunk_view), name="journeys_profile_import_chunk"),
            *super().get_urls(),
        ]

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        extra_context = {"can_import": self._can(request, Capability.WRITE_PROFILES), **(extra_context or {})}
        return super().changelist_view(request, extra_context)

    def _importing(self, request: HttpRequest) -> Organization:
        """The organization profiles are imported into: the active one, for a role that writes profiles."""
        if not self._can(request, Capability.WRITE_PROFILES):
            raise PermissionDenied
        organization = active_organization(request)
        if organization is None:
            raise Http404(_("Choose an organization first."))
        return organization

    def _upload(self, request: HttpRequest, token: str) -> dict[str, Any]:
        """The upload of this user and organization, or 404: another's token finds nothing."""
        organization = self._importing(request)
        meta = cache.get(_key(token))
        if not meta or meta["organization"] != organization.pk or meta["user"] != request.user.pk:
            raise Http404(_("This upload is not there any more: upload the file again."))
        return meta

    def _rows(self, token: str, chunk: int) -> list[tuple[int, list[str]]]:
        rows = cache.get(_key(token, str(chunk)))
        if rows is None:
            raise Http404(_("This upload is not there any more: upload the file again."))
        return rows

    def _page(self, request: HttpRequest, template: str, title: str, **context: Any) -> TemplateResponse:
        return TemplateResponse(request, f"admin/journeys/profile/{template}", {
            **self.admin_site.each_context(request), "opts": self.opts, "app_label": self.opts.app_label,
            "title": title, **context,
        })  # fmt: skip

    def import_upload_view(self, request: HttpRequest) -> HttpResponse:
        organization = self._importing(request)
        form = UploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                if upload.size > MAX_FILE_BYTES:
                    raise ValueError(_("The file is larger than 50 MB."))
                header, rows = read_csv(upload.read())
            except ValueError as exc:
                form.add_error("file", str(exc))
            else:
                token = secrets.token_urlsafe(16)
                chunks = [rows[at : at + CHUNK_ROWS] for at in range(0, len(rows), CHUNK_ROWS)]
                cache.set_many({_key(token, str(i)): chunk for i, chunk in enumerate(chunks)}, KEPT_S)
                meta = {"organization": organization.pk, "user": request.user.pk, "name": upload.name,
                        "columns": header, "total": len(rows), "chunks": len(chunks), "mapping": None}  # fmt: skip
                cache.set(_key(token), meta, KEPT_S)
                return HttpResponseRedirect(reverse("admin:journeys_profile_import_map", args=[token]))
        return self._page(request, "import_upload.html", _("Import profiles from CSV"), form=form)

    def import_map_view(self, request: HttpRequest, token: str) -> HttpResponse:
        meta = self._upload(request, token)
        form = MappingForm(meta["columns"], request.POST or None)
        problems: list[str] = []
        if request.method == "POST" and form.is_valid():
            mapping = form.mapping()
            names = [name for _column, name, _kind in mapping["attributes"]]
            if len(set(names)) < len(names):
                problems.append(_("Two columns have the same attribute name."))
            for chunk in range(meta["chunks"]):
                if problems and len(problems) > SHOWN_ERRORS:
                    break
                problems += mapped(self._rows(token, chunk), mapping)[1]
            if not problems:
                meta["mapping"] = mapping
                cache.set(_key(token), meta, KEPT_S)
        preview = [values for _line, values in self._rows(token, 0)[:PREVIEW_ROWS]]
        return self._page(
            request, "import_map.html", _("Import profiles from CSV"), form=form, meta=meta, token=token,
            preview=preview, problems=problems[:SHOWN_ERRORS], more_problems=max(0, len(problems) - SHOWN_ERRORS),
            ready=meta["mapping"] is not None and request.method == "POST" and not problems,
        )  # fmt: skip

    def import_chunk_view(self, request: HttpRequest, token: str) -> HttpResponse:
        """POST chunk=N imports that chunk and answers JSON; POST all=1 imports every chunk and redirects."""
        if request.method != "POST":
            raise Http404
        meta = self._upload(request, token)
        if meta["mapping"] is None:
            raise Http404(_("Map the columns first."))
        organization = self._importing(request)
        everything = request.POST.get("all") == "1"
        try:
            first = 0 if everything else int(request.POST.get("chunk", ""))
        except ValueError:
            raise Http404 from None
        if not 0 <= first < meta["chunks"]:
            raise Http404
        counts, problems = {"created": 0, "updated": 0}, []
        for chunk in range(first, meta["chunks"] if everything else first + 1):
            items, problems = mapped(self._rows(token, chunk), meta["mapping"])
            if problems:  # checked at mapping; only a change since then gets here
                break
            done = profiles_bulk_upsert(organization=organization, profiles=profiles_check(items)[0])
            counts = {name: counts[name] + done[name] for name in counts}
        finished = everything or first == meta["chunks"] - 1
        if finished and not problems:
            cache.delete_many([_key(token), *(_key(token, str(i)) for i in range(meta["chunks"]))])
        if not everything:
            imported = min(meta["total"], (first + 1) * CHUNK_ROWS)
            return JsonResponse({**counts, "imported": imported, "total": meta["total"], "done": finished,
                                 "problems": [str(p) for p in problems]})  # fmt: skip
        if problems:
            self.message_user(request, "; ".join(problems[:SHOWN_ERRORS]), messages.ERROR)
        else:
            self.message_user(request, _("Profiles created: %(created)s; updated: %(updated)s.") % counts)
        return HttpResponseRedirect(reverse("admin:journeys_profile_changelist"))
