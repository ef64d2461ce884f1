"""The web app: results browser, triple pages, image route and the rating pages, on Starlette.

Routes
- ``GET /``: the triple list (see :mod:`.browse` for its query parameters)
- ``GET /triple/{id}``: one triple with every method's image and per-pair metrics
- ``GET /img/{key}``: an image registered in the catalog (never a path from the request)
- ``GET /rate/{token}``: the rater's next comparison; ``GET /rate/{token}/next.json`` the same as data
- ``POST /rate/{token}/vote``: a vote (form fields or JSON: ``comparison``, ``OBC``, ``TAR``, ``AP``);
  a form gets a 303 back to the rating page, JSON gets ``{"stored": bool, "done", "total"}``
Refusals are 4xx with one sentence (JSON ``{"error": ...}`` for JSON requests, a page otherwise).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from spf_bench.core.errors import SpfError
from spf_bench.study.db import QUESTION_TEXT, QUESTIONS, ensure_schema
from spf_bench.study.votes import VoteError, cast_vote, parse_answers, progress
from spf_bench.results.render import fixed
from spf_bench.results.tables import METRIC_BY_NAME, method_label, untrained_notes
from spf_bench.serve.browse import list_view, worst_case_links
from spf_bench.serve.catalog import Catalog, arrow, higher_is_better, image_key, load_catalog

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def _number(value: float, metric: str | None = None) -> str:
    """A value with its metric's decimals (as the report's tables print it); – when absent."""
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return "–"
    return fixed(value, METRIC_BY_NAME[metric].decimals if metric in METRIC_BY_NAME else 3)


TEMPLATES.env.filters["num"] = _number
TEMPLATES.env.globals.update(arrow=arrow, label=method_label, urlencode=lambda q: urlencode(q, doseq=True))


def _wants_json(request: Request) -> bool:
    return request.url.path.endswith(".json") or "application/json" in request.headers.get("content-type", "") \
        or "application/json" in request.headers.get("accept", "")


def refuse(request: Request, status: int, sentence: str) -> Response:
    if _wants_json(request):
        return JSONResponse({"error": sentence}, status_code=status)
    return TEMPLATES.TemplateResponse(request, "error.html", {"message": sentence, "title": "Refused"}, status_code=status)


def create_app(runs_dir: Path | str, db: Path | str) -> Starlette:
    catalog: Catalog = load_catalog(runs_dir)
    db = ensure_schema(db)
    # tiny or random weights: every results page says the numbers mean nothing, as the report does;
    # the rating pages do not, since a rater judges images, not numbers
    banner = untrained_notes(catalog.runs)

    async def index(request: Request) -> Response:
        try:
            view = list_view(catalog, request.query_params)
        except SpfError as exc:
            return refuse(request, 400, str(exc))
        categories = sorted(set(catalog.rows["category"]))
        return TEMPLATES.TemplateResponse(request, "index.html", {
            "title": "SPF-Bench results", "view": view, "catalog": catalog, "categories": categories,
            "worst": worst_case_links(catalog), "banner": banner, "hib": higher_is_better(view.metric) if view.metric else True})

    async def triple(request: Request) -> Response:
        tid = request.path_params["tid"]
        record = catalog.triple(tid)
        if record is None:
            return refuse(request, 404, "No triple has that id in these runs.")
        methods = [{"name": m, "image": catalog.image("images", m, tid), "recon": catalog.image("reconstruction", m, tid),
                    "values": {k: catalog.value(m, k, tid) for k in catalog.metrics}} for m in catalog.methods]
        original = image_key("original", "", tid)
        return TEMPLATES.TemplateResponse(request, "triple.html", {
            "title": f"Triple {tid}", "banner": banner, "t": record, "methods": methods, "metrics": catalog.metrics,
            "original": original if original in catalog.images else None})

    async def image(request: Request) -> Response:
        path = catalog.images.get(request.path_params["key"])
        if path is None:
            return refuse(request, 404, "No image is registered under that key.")
        return FileResponse(path, media_type="image/png", headers={"Cache-Control": "max-age=3600"})

    def _comparison_view(token: str) -> dict:
        state = progress(db, token)
        view = {"rater": state.label, "study": state.study, "done": state.done, "total": state.total,
                "comparison": None, "questions": [{"key": q, "text": QUESTION_TEXT[q]} for q in QUESTIONS]}
        c = state.comparison
        if c is not None:
            record = catalog.triple(c["triple_id"]) or {}
            left = catalog.image("images", c["left_method"], c["left_triple"])
            right = catalog.image("images", c["right_method"], c["right_triple"])
            original = image_key("original", "", c["triple_id"])
            view["comparison"] = {
                "id": c["id"], "position": c["position"], "triple": c["triple_id"],
                "target_caption": record.get("target_caption", ""), "base_caption": record.get("base_caption", ""),
                "original": f"/img/{original}" if original in catalog.images else None,
                "left": f"/img/{left}" if left else None, "right": f"/img/{right}" if right else None}
        return view

    async def rate(request: Request) -> Response:
        try:
            view = await run_in_threadpool(_comparison_view, request.path_params["token"])
        except VoteError as exc:
            return refuse(request, exc.status, str(exc))
        return TEMPLATES.TemplateResponse(request, "rate.html", {"title": "Which image is better?", "v": view,
                                                                 "token": request.path_params["token"]})

    async def rate_json(request: Request) -> Response:
        try:
            return JSONResponse(await run_in_threadpool(_comparison_view, request.path_params["token"]))
        except VoteError as exc:
            return refuse(request, exc.status, str(exc))

    async def vote(request: Request) -> Response:
        token = request.path_params["token"]
        is_json = "application/json" in request.headers.get("content-type", "")
        try:
            if is_json:
                try:
                    fields = json.loads(await request.body())
                except (ValueError, UnicodeDecodeError):
                    raise VoteError(400, "The vote body is not valid JSON.") from None
            else:
                fields = dict(await request.form())
            comparison, answers = parse_answers(fields)
            # SQLite calls block (a vote waits for its fsync): off the event loop, so images keep flowing
            stored = await run_in_threadpool(cast_vote, db, token, comparison, answers)
            state = await run_in_threadpool(progress, db, token)
        except VoteError as exc:
            return refuse(request, exc.status, str(exc))
        if is_json:
            return JSONResponse({"stored": stored, "done": state.done, "total": state.total})
        return RedirectResponse(f"/rate/{token}", status_code=303)

    routes = [Route("/", index), Route("/triple/{tid:path}", triple), Route("/img/{key}", image),
              Route("/rate/{token}", rate), Route("/rate/{token}/next.json", rate_json),
              Route("/rate/{token}/vote", vote, methods=["POST"])]

    async def not_found(request: Request, exc) -> Response:
        return refuse(request, getattr(exc, "status_code", 404), "There is no page at that address.")

    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
