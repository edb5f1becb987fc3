"""The desk's media pages: image upload into `render.static_dir` (alt text required, scaled,
without metadata, committed) and translations side by side with their original."""

from __future__ import annotations

from flask import Response, request
from werkzeug.exceptions import RequestEntityTooLarge

from comms.content.markup import MAX_BODY
from comms.core.errors import CommsError
from comms.core.languages import site_editions
from comms.db.desk_accounts import Account
from comms.sending.desk_images import (
    TOO_LARGE,
    UPLOAD_LIMIT,
    Exists,
    NotAllowed,
    Refused,
    TooLarge,
    Uploaded,
    insert,
    upload,
)
from comms.sending.desk_translations import DIGEST, Translations
from comms.web.desk_kit import DESK_FORM, DeskKit
from comms.web.guard import acting

#: What the form around the file may add to the upload's size (fields, multipart headers).
FORM_SLACK = 256 * 1024
#: The largest translation form: a body of MAX_BODY characters of 3 UTF-8 bytes each,
#: percent-encoded (9 bytes per character), and its fields.
TEXT_FORM_LIMIT = 9 * MAX_BODY + FORM_SLACK
#: The desk's forms that carry a whole text: edits, checks while typing, translations.
TEXT_FORMS = frozenset({"desk.save_form", "desk.save_raw", "desk.check", "desk.save_translation"})
#: What a redirect after a save may report (never text from the request).
DONE = {"save"}


def add_media_pages(kit: DeskKit) -> None:
    """Add the image upload and the translation pages to the desk of `kit`."""
    desk, page, see_other, needs, _ = kit.blueprint, kit.page, kit.see_other, kit.needs, kit.text
    office = kit.office
    translations = Translations(office.config, office.accounts)
    editions = site_editions(office.config)
    limit_mb = UPLOAD_LIMIT // 1_000_000

    @desk.before_request
    def form_size() -> None:
        # The app takes small forms only (64 KiB); the upload and the desk's text forms (a
        # body of up to MAX_BODY characters, in a script of 2-3 UTF-8 bytes each,
        # percent-encoded) get limits of their own, set before anything reads the body.
        # The login and code forms keep the small one: anyone may send them.
        if request.method != "POST":
            return
        if request.endpoint == "desk.upload_image":
            request.max_content_length = UPLOAD_LIMIT + FORM_SLACK
        elif request.endpoint in TEXT_FORMS:
            request.max_content_length = request.max_form_memory_size = TEXT_FORM_LIMIT

    @desk.errorhandler(RequestEntityTooLarge)
    def too_large(_exc: RequestEntityTooLarge) -> Response:
        if request.endpoint == "desk.upload_image":
            return upload_page(413, error=_(TOO_LARGE) % {"limit": limit_mb})
        return page("message.html.j2", 413, message=_("The form is too large to be sent."))

    def upload_page(status: int = 200, **context: object) -> Response:
        values = {"alt": "", "caption": "", "credit": "", "name": "", "error": ""} | context
        # `name` is the page's own argument (the template): the typed file name is `wanted`.
        values["wanted"] = values.pop("name")
        return page("images.html.j2", status, limit_mb=limit_mb, **values)

    @desk.route("/images", methods=["GET", "HEAD"])
    @needs("editor")
    def images(account: Account) -> Response:
        return upload_page()

    @desk.route("/images", methods=["POST"])
    @acting(DESK_FORM)
    @needs("editor")
    def upload_image(account: Account) -> Response:
        form = request.form
        typed = {key: form.get(key, "")[:1000] for key in ("alt", "caption", "credit", "name")}
        sent = request.files.get("file")
        if sent is None or not sent.filename:
            return upload_page(400, error=_("Choose an image file."), **typed)
        try:
            done: Uploaded = upload(
                office,
                account,
                sent.read(UPLOAD_LIMIT + 1),
                uploaded_name=sent.filename,
                replace=form.get("replace") == "yes",
                **typed,
            )
        except Refused as exc:
            message = _(exc.message) % exc.values
            status = (
                413
                if isinstance(exc, TooLarge)
                else 409
                if isinstance(exc, Exists)
                else 403
                if isinstance(exc, NotAllowed)
                else 400
            )
            return upload_page(status, error=message, **typed)
        except CommsError as exc:
            return upload_page(409, error=str(exc), **typed)
        notes = [_(note) % values for note, values in done.notes]
        return page("image_done.html.j2", image=done, notes=notes, items=office.items())

    @desk.route("/images/insert", methods=["POST"])
    @acting(DESK_FORM)
    @needs("editor")
    def insert_image(account: Account) -> Response:
        form = request.form
        kind, _slash, slug = form.get("item", "").partition("/")
        try:
            insert(office, account, kind, slug, form.get("image", ""), form.get("alt", ""))
        except Refused as exc:
            return page("message.html.j2", 400, message=_(exc.message) % exc.values)
        except CommsError as exc:
            return page("message.html.j2", 409, message=str(exc))
        return see_other(f"/edit/{kind}/{slug}?done=save")

    @desk.route("/translations", methods=["GET", "HEAD"])
    @needs("editor")
    def translation_list(account: Account) -> Response:
        rows = translations.states(office.items())
        labels = {edition.language: edition.label for edition in editions.translated}
        return page("translations.html.j2", rows=rows, labels=labels)

    def sides_page(
        kind: str, slug: str, language: str, status: int = 200, **context: object
    ) -> Response:
        try:
            sides = translations.sides(office.items(), kind, slug, language)
        except CommsError as exc:
            return page("message.html.j2", 404, message=str(exc))
        edition = editions.get(language)
        home = editions.home
        values = {"done": "", "error": "", "typed": None} | context
        return page("translate.html.j2", status, sides=sides, edition=edition, home=home, **values)

    @desk.route("/translate/<kind>/<slug>/<language>", methods=["GET", "HEAD"])
    @needs("editor")
    def translate(account: Account, kind: str, slug: str, language: str) -> Response:
        done = request.args.get("done", "")
        return sides_page(kind, slug, language, done=done if done in DONE else "")

    @desk.route("/translate/<kind>/<slug>/<language>", methods=["POST"])
    @acting(DESK_FORM)
    @needs("editor")
    def save_translation(account: Account, kind: str, slug: str, language: str) -> Response:
        form = request.form
        typed = (form.get("fields", ""), form.get("body", ""))
        shown = form.get("original", "")
        follows = form.get("follows") == "yes"
        try:
            translations.save(
                office.items(), kind, slug, language, typed,
                (form.get("version", ""), shown if DIGEST.match(shown) else "", follows), account,
            )  # fmt: skip
        except CommsError as exc:
            # What was typed stays in the form, beside the reason; the file is untouched.
            return sides_page(kind, slug, language, 409, error=str(exc), typed=typed)
        return see_other(f"/translate/{kind}/{slug}/{language}?done=save")
