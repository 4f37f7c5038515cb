"""Synthetic Snowplow enriched events for ``signals-stream dev``, benchmarks and demos.

The model, all of it driven by one ``random.Random(seed)`` so that a seed fixes the whole stream:

* a fixed population of ``users`` web visitors of one shop, each with a device, a location, a
  ``domain_userid`` / ``network_userid`` pair and, for ``registered_share`` of them, an account id
  (``U12345``) that becomes ``user_id`` and the ecommerce ``user`` entity once they log in;
* visits are sessions (new ``domain_sessionid``, ``domain_sessionidx`` + 1, ``client_session``
  entity) of page views chosen by a small Markov chain over home, category, product, search, cart,
  checkout and content pages. Each page view is followed by page pings every ~10 s while the visitor
  is engaged, ``ui`` structured events, and Snowplow ecommerce actions (product_view, list_view,
  list_click, add_to_cart, remove_from_cart, checkout_step, transaction) carrying ``product``,
  ``cart``, ``checkout_step``, ``transaction`` and ``user`` entities. ``ecommerce_share`` of the
  sessions have shopping intent; they produce the funnel views → carts → checkouts → orders;
* sessions of one user are separated by more than 30 minutes. Users are interleaved through a heap
  keyed on event time, so the stream is ordered by ``derived_tstamp``. Memory is O(users), about
  5 KB per visitor, and does not grow with the number of events.

Timestamps follow Enrich: with event time ``T``, send delay ``d`` and network latency ``l``,
``dvce_created = T - l + skew``, ``dvce_sent = dvce_created + d`` and ``collector = T + d``, so
Enrich's ``derived = collector - (dvce_sent - dvce_created)`` is exactly ``T`` whatever the
device clock skew; ``etl`` follows the collector by up to ~1 s.
"""

from __future__ import annotations

import heapq
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import NamedTuple

from signals_stream.devtools.generator_data import (
    CLICK_TARGETS,
    DEVICE_WEIGHTS,
    DEVICES,
    GEO_WEIGHTS,
    GEOS,
    SOURCE_WEIGHTS,
    SOURCES,
    Source,
)
from signals_stream.devtools.generator_journey import (
    DOC_HEIGHTS,
    MEAN_DWELL_MS,
    PAGE_PING,
    PAGE_VIEW,
    STRUCT,
    Journey,
    PageVisit,
    Planned,
    Visitor,
    to_json,
)
from signals_stream.events.fields import FIELD_COUNT, FIELD_INDEX

__all__ = ["GeneratedEvent", "GeneratorConfig", "generate_events", "generate_lines", "visitor_ids"]

logger = logging.getLogger(__name__)

_MINUTE_MS = 60_000
_HOUR_MS = 60 * _MINUTE_MS
_SESSION_TIMEOUT_MS = 30 * _MINUTE_MS  # the JS tracker's default inactivity timeout


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class GeneratorConfig:
    """What to generate.

    Args:
        users: size of the visitor population (memory is about 5 KB per visitor).
        seed: seed of the single random generator; equal configs give byte-identical streams
            (in ``live`` mode only the timestamps differ).
        start_ms: event time of the earliest possible event; ``None`` means ``clock()`` when the
            stream starts. Ignored when ``live``.
        ecommerce_share: probability that a session has shopping intent (adds to cart, checks out).
            Other sessions mostly read content pages; product pages they open still emit views.
        registered_share: share of users who own an account and may log in.
        session_gap_mean_ms: mean extra gap between two sessions of one user, on top of the
            30-minute session timeout (exponentially distributed).
        arrival_window_ms: first sessions start uniformly within this window after ``start_ms``.
        app_id: the tracker's ``app_id``.
        host: the shop's host name, used in ``page_url``.
        currency: ISO currency of every price.
        live: stamp each event with ``clock()`` at the moment it is generated instead of simulated
            time, for feeding a broker at a chosen rate (the consumer's pace sets the event rate).
            The simulated schedule still decides who acts next and the order per user; times stay
            strictly increasing per user, but the gaps are those of the consumer, not the model.
        clock: epoch-milliseconds clock used for ``start_ms=None`` and ``live``.
    """

    users: int = 1000
    seed: int = 0
    start_ms: int | None = None
    ecommerce_share: float = 0.3
    registered_share: float = 0.4
    session_gap_mean_ms: int = 2 * _HOUR_MS
    arrival_window_ms: int = _HOUR_MS
    app_id: str = "signals-demo-shop"
    host: str = "shop.example.com"
    currency: str = "USD"
    live: bool = False
    clock: Callable[[], int] = field(default=_wall_clock_ms, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.users < 1:
            raise ValueError(f"users must be >= 1, got {self.users}")
        for name in ("ecommerce_share", "registered_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {value}")
        if self.session_gap_mean_ms <= 0 or self.arrival_window_ms <= 0:
            raise ValueError("session_gap_mean_ms and arrival_window_ms must be positive")


class GeneratedEvent(NamedTuple):
    """One generated enriched event, ready to produce.

    A NamedTuple rather than a frozen dataclass: built once per event, it is several times
    cheaper to create.

    Attributes:
        line: the 131-field enriched TSV, UTF-8, without a line terminator (a Kafka record value).
        key: a random UUID, as Enrich uses when no ``partitionKey`` is configured.
        event_time_ms: the event's ``derived_tstamp`` in epoch milliseconds.
        domain_userid: the visitor's cookie id.
    """

    line: bytes
    key: bytes
    event_time_ms: int
    domain_userid: str


def generate_events(config: GeneratorConfig) -> Iterator[GeneratedEvent]:
    """Yield an endless stream of enriched events, ordered by event time.

    Args:
        config: what to generate.

    Returns:
        An infinite iterator; take what you need (``itertools.islice``, :func:`generate_lines`).
    """
    return _Simulation(config).run()


def visitor_ids(config: GeneratorConfig) -> list[str]:
    """The ``domain_userid`` of every visitor ``generate_events(config)`` simulates, in visitor
    order (the same random draws, so the same ids)."""
    return [visitor.duid for _, _, visitor in _Simulation(config).visitors()]


def generate_lines(config: GeneratorConfig, count: int) -> Iterator[bytes]:
    """Yield the TSV lines of the first ``count`` events of :func:`generate_events`.

    Args:
        config: what to generate.
        count: how many lines.

    Returns:
        An iterator over ``count`` lines, without terminators.
    """
    return (event.line for event in islice(generate_events(config), count))


# --- the wire format ---------------------------------------------------------------------------

_F = FIELD_INDEX
_CONTEXTS_PREFIX = (
    '{"schema":"iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-1","data":['
)
_SP = "iglu:com.snowplowanalytics.snowplow/"
_WEB_PAGE_SCHEMA = _SP + "web_page/jsonschema/1-0-0"
_CLIENT_SESSION_SCHEMA = _SP + "client_session/jsonschema/1-0-2"
_USER_SCHEMA = "iglu:com.snowplowanalytics.snowplow.ecommerce/user/jsonschema/1-0-0"
# event_vendor / event_name / event_format / event_version, as Enrich's SchemaEnrichment sets them.
_HDR_PAGE_VIEW = "com.snowplowanalytics.snowplow\tpage_view\tjsonschema\t1-0-0"
_HDR_PAGE_PING = "com.snowplowanalytics.snowplow\tpage_ping\tjsonschema\t1-0-0"
_HDR_STRUCT = "com.google.analytics\tevent\tjsonschema\t1-0-0"
_NO_STRUCT = "\t" * 4  # five empty se_* fields
_NO_PINGS = "\t" * 3  # four empty pp_* fields
_LOGIN_PREFIX = "auth\tlogin\t"
_SCROLL_EVENT = "ui\tscroll\tpage\tpercent\t50"

# The fields _emit() writes per event, as runs of consecutive fields. A page's other fields are
# pre-joined into the constant chunks around these runs (_chunks()), so an event is one f-string
# instead of a 131-field list copy and join.
_PER_EVENT_RUNS: tuple[tuple[str, ...], ...] = (
    ("etl_tstamp", "collector_tstamp", "dvce_created_tstamp", "event", "event_id"),
    ("user_id",),
    ("contexts", "se_category", "se_action", "se_label", "se_property", "se_value",
     "unstruct_event"),
    ("pp_xoffset_min", "pp_xoffset_max", "pp_yoffset_min", "pp_yoffset_max"),
    ("dvce_sent_tstamp",),
    ("derived_tstamp", "event_vendor", "event_name", "event_format", "event_version",
     "event_fingerprint"),
)  # fmt: skip
_RUN_SPANS = tuple((_F[run[0]], _F[run[-1]] + 1) for run in _PER_EVENT_RUNS)
assert all(
    [_F[name] for name in run] == list(range(start, end))
    for run, (start, end) in zip(_PER_EVENT_RUNS, _RUN_SPANS, strict=True)
)
_REFR_FIELDS = tuple(
    _F[name]
    for name in (
        "page_referrer", "refr_urlscheme", "refr_urlhost", "refr_urlport", "refr_urlpath",
        "refr_urlquery", "refr_medium", "refr_source",
    )
)  # fmt: skip
_MKT_FIELDS = tuple(
    _F[name] for name in ("mkt_medium", "mkt_source", "mkt_term", "mkt_content", "mkt_campaign")
)
_MILLIS = tuple(f".{ms:03d}" for ms in range(1000))
_UUID_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}
_MAX_PAGES_PER_SESSION = 25


def _chunks(fields: list[str]) -> tuple[str, ...]:
    """Join the constant fields around the per-event runs, tabs included (7 chunks)."""
    chunks, previous_end = [], 0
    for start, end in _RUN_SPANS:
        before = "\t".join(fields[previous_end:start])
        chunks.append(f"\t{before}\t" if previous_end else f"{before}\t")
        previous_end = end
    chunks.append("\t" + "\t".join(fields[previous_end:]))
    return tuple(chunks)


def _first(item: Planned) -> int:
    return item[0]


# --- the simulation ----------------------------------------------------------------------------


class _Simulation:
    """Schedules visitors on a heap by next event time and renders their events as TSV."""

    def __init__(self, config: GeneratorConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.journey = Journey(self.rng, config.currency)
        self._second_cache: dict[int, str] = {}
        self._live = config.live
        self._clock = config.clock

    def run(self) -> Iterator[GeneratedEvent]:
        config = self.config
        heap = self.visitors()
        heapq.heapify(heap)
        logger.debug("generator started: %d users, seed %d", config.users, config.seed)
        while True:
            _, num, visitor = heap[0]
            event = self._emit(visitor, visitor.plan.pop())
            if not visitor.plan:
                self._advance(visitor)
            heapq.heapreplace(heap, (visitor.plan[-1][0], num, visitor))
            yield event

    def visitors(self) -> list[tuple[int, int, Visitor]]:
        """The population, each with its first session planned: (next time, number, visitor)."""
        config, rng = self.config, self.rng
        start = config.clock() if config.start_ms is None or config.live else config.start_ms
        planned: list[tuple[int, int, Visitor]] = []
        for num in range(config.users):
            visitor = self._new_visitor(num)
            self._start_session(visitor, start + rng.randrange(config.arrival_window_ms))
            planned.append((visitor.plan[-1][0], num, visitor))
        return planned

    # -- primitives --

    def _uuid(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        # Version 4 and the RFC 4122 variant, as uuid.uuid4() sets them.
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_UUID_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"

    def _ts(self, ms: int) -> str:
        second, milli = divmod(ms, 1000)
        text = self._second_cache.get(second)
        if text is None:
            if len(self._second_cache) > 4096:
                self._second_cache.clear()
            text = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second))
            self._second_cache[second] = text
        return text + _MILLIS[milli]

    # -- visitors and sessions --

    def _new_visitor(self, num: int) -> Visitor:
        rng = self.rng
        account = f"U{10000 + num}" if rng.random() < self.config.registered_share else None
        visitor = Visitor(num, self._uuid(), self._uuid(), account)
        if account is not None:
            entity = {"schema": _USER_SCHEMA, "data": {"id": account, "is_guest": False}}
            visitor.user_context = "," + to_json(entity)
        visitor.device = rng.choices(range(len(DEVICES)), DEVICE_WEIGHTS)[0]
        visitor.geo = rng.choices(range(len(GEOS)), GEO_WEIGHTS)[0]
        visitor.ip = f"{rng.choice(('192.0.2', '198.51.100', '203.0.113'))}.{rng.randrange(1, 255)}"
        # Device clocks: most are right, some are minutes off, a few hours off.
        r = rng.random()
        bound = 2_000 if r < 0.8 else 300_000 if r < 0.95 else 6 * _HOUR_MS
        visitor.skew_ms = rng.randint(-bound, bound)
        return visitor

    def _advance(self, visitor: Visitor) -> None:
        """Plan the visitor's next page, or end the session and plan the next one."""
        rng = self.rng
        if visitor.next_page is None:
            idle_ms = int(rng.expovariate(1 / self.config.session_gap_mean_ms))
            self._start_session(visitor, visitor.page_end_ms + _SESSION_TIMEOUT_MS + idle_ms + 1)
        else:
            kind, arg = visitor.next_page
            self._plan_page(visitor, visitor.page_end_ms + rng.randint(400, 3_000), kind, arg, None)

    def _start_session(self, visitor: Visitor, t0: int) -> None:
        rng = self.rng
        visitor.prev_session_id = visitor.session_id or None
        visitor.session_id = self._uuid()
        visitor.session_idx += 1
        visitor.event_index = 0
        visitor.pages = 0
        visitor.shopper = rng.random() < self.config.ecommerce_share
        if visitor.logged_in and rng.random() < 0.3:
            visitor.logged_in = False  # the "remember me" cookie expired
        visitor.session_fields = self._session_fields(visitor)
        source = rng.choices(SOURCES, SOURCE_WEIGHTS)[0]
        kind, arg = self.journey.landing(visitor)
        self._plan_page(visitor, t0, kind, arg, source)

    def _session_fields(self, visitor: Visitor) -> list[str]:
        """The TSV fields that stay constant for a whole session."""
        config = self.config
        device, geo = DEVICES[visitor.device], GEOS[visitor.geo]
        f = [""] * FIELD_COUNT
        for name, value in (
            ("app_id", config.app_id), ("platform", "web"), ("name_tracker", "sp"),
            ("v_tracker", "js-3.24.2"), ("v_collector", "ssc-3.2.0-kafka"),
            ("v_etl", "snowplow-enrich-kafka-5.1.0-common-5.1.0"), ("user_ipaddress", visitor.ip),
            ("domain_userid", visitor.duid), ("domain_sessionidx", str(visitor.session_idx)),
            ("network_userid", visitor.nuid), ("geo_country", geo.country),
            ("geo_region", geo.region), ("geo_city", geo.city), ("geo_zipcode", geo.zipcode),
            ("geo_latitude", geo.latitude), ("geo_longitude", geo.longitude),
            ("geo_region_name", geo.region_name), ("geo_timezone", geo.timezone),
            ("useragent", device.useragent), ("br_lang", geo.language), ("br_cookies", "1"),
            ("br_colordepth", "24"), ("br_viewwidth", str(device.view_width)),
            ("br_viewheight", str(device.view_height)), ("os_timezone", geo.timezone),
            ("dvce_screenwidth", str(device.screen_width)),
            ("dvce_screenheight", str(device.screen_height)), ("doc_charset", "UTF-8"),
            ("doc_width", str(device.view_width)), ("domain_sessionid", visitor.session_id),
        ):  # fmt: skip
            f[_F[name]] = value
        return f

    # -- pages --

    def _plan_page(
        self, visitor: Visitor, t0: int, kind: int, arg: int, source: Source | None
    ) -> None:
        """Plan one page view and the events on it; decide where the visitor goes next."""
        rng = self.rng
        visitor.page_chunks = _chunks(self._page_fields(visitor, kind, arg, source))
        page_view_id = self._uuid()
        visitor.page_context = to_json({"schema": _WEB_PAGE_SCHEMA, "data": {"id": page_view_id}})
        visitor.pages += 1
        dwell = min(600_000, max(4_000, int(rng.expovariate(1 / MEAN_DWELL_MS[kind]))))
        plan: list[Planned] = [(t0, PAGE_VIEW, None)]
        self._plan_pings(plan, visitor, t0, dwell, kind)
        if rng.random() < 0.25:
            label = rng.choice(CLICK_TARGETS)
            plan.append((t0 + rng.randint(1_000, dwell), STRUCT, f"ui\tclick\t{label}\t\t"))
        page = PageVisit(plan, visitor, t0, dwell, arg, rng)
        next_page = self.journey.page_events(page, kind)
        if visitor.pages >= _MAX_PAGES_PER_SESSION:
            next_page = None
        plan.sort(key=_first)
        previous = t0
        for i in range(1, len(plan)):
            if plan[i][0] <= previous:  # keep times strictly increasing within a visitor
                plan[i] = (previous + 1, plan[i][1], plan[i][2])
            previous = plan[i][0]
        plan.reverse()
        visitor.plan = plan
        visitor.next_page = next_page
        visitor.page_end_ms = max(t0 + dwell, previous)

    def _plan_pings(
        self, plan: list[Planned], visitor: Visitor, t0: int, dwell: int, kind: int
    ) -> None:
        """Page pings every ~10 s while engaged, with scroll offsets and a scroll-depth event."""
        rand = self.rng.random
        max_y = max(0, DOC_HEIGHTS[kind] - DEVICES[visitor.device].view_height)
        y = 0
        half_reported = False
        t = t0 + 9_700 + int(rand() * 600)
        while t < t0 + dwell:
            if rand() < 0.9:  # the tracker skips heartbeats while the visitor is idle
                low = max(0, y - int(rand() * 200))
                y = min(max_y, y + int(rand() * 900))
                plan.append((t, PAGE_PING, f"0\t0\t{low}\t{y}"))
                if not half_reported and max_y and y * 2 >= max_y:
                    half_reported = True
                    plan.append((t + 1 + int(rand() * 500), STRUCT, _SCROLL_EVENT))
            t += 9_700 + int(rand() * 600)

    def _page_fields(
        self, visitor: Visitor, kind: int, arg: int, source: Source | None
    ) -> list[str]:
        """The session's fields plus those of one page view (URL, referrer, campaign).

        ``source`` is the traffic source of a landing page, ``None`` for internal navigation.
        """
        host = self.config.host
        path, query, title = self.journey.location(kind, arg)
        f = visitor.session_fields.copy()
        if source is not None and source.utm_query:
            utm = source.utm_query
            if source.paid:
                click_id = f"Cj0KCQjw{self.rng.getrandbits(64):016x}"
                f[_F["mkt_clickid"]], f[_F["mkt_network"]] = click_id, "Google"
                utm = f"{utm}&gclid={click_id}"
            query = f"{query}&{utm}" if query else utm
        url = f"https://{host}{path}" + (f"?{query}" if query else "")
        f[_F["page_url"]], f[_F["page_title"]] = url, title
        f[_F["page_urlscheme"]], f[_F["page_urlhost"]], f[_F["page_urlport"]] = "https", host, "443"
        f[_F["page_urlpath"]], f[_F["page_urlquery"]] = path, query
        f[_F["doc_height"]] = str(DOC_HEIGHTS[kind])
        refr: tuple[str, ...] = ("",) * len(_REFR_FIELDS)
        if source is None:  # internal navigation: the referrer is the previous page
            prev_url, prev_path = visitor.page_url
            prev_query = prev_url.partition("?")[2]
            refr = (prev_url, "https", host, "443", prev_path, prev_query, "internal", "")
        elif source.referrer:
            refr_host = source.referrer.split("/")[2]
            refr = (
                source.referrer,
                "https",
                refr_host,
                "443",
                "/",
                "",
                source.medium,
                source.source,
            )
        for index, value in zip(_REFR_FIELDS, refr, strict=True):
            f[index] = value
        if source is not None and source.campaign is not None:
            for index, value in zip(_MKT_FIELDS, source.campaign, strict=True):
                f[index] = value
        visitor.page_url = (url, path)
        return f

    # -- one event --

    def _emit(self, visitor: Visitor, item: Planned) -> GeneratedEvent:
        rng = self.rng
        rand = rng.random  # the hot path: plain random() is much cheaper than randint()
        planned_ms, kind, payload = item
        # Trackers usually send at once; a few events wait in an offline queue.
        send_delay = 1 + int(rand() * (250 if rand() < 0.97 else 60_000))
        latency = 15 + int(rand() * 285)
        etl_lag = 20 + int(rand() * 880)
        if self._live:
            t = max(self._clock() - send_delay - etl_lag, visitor.last_ms + 1)
        else:
            t = planned_ms
        visitor.last_ms = t
        collector = t + send_delay
        created = t - latency + visitor.skew_ms
        ts = self._ts
        derived = ts(t)
        event_id = self._uuid()
        visitor.event_index += 1
        if visitor.event_index == 1:
            visitor.session_context = self._session_context(visitor, event_id, derived)
        contexts = [_CONTEXTS_PREFIX, visitor.page_context]
        struct, unstruct, pings = _NO_STRUCT, "", _NO_PINGS
        if kind == PAGE_VIEW:
            event, header = "page_view", _HDR_PAGE_VIEW
        elif kind == PAGE_PING:
            event, header, pings = "page_ping", _HDR_PAGE_PING, payload
        elif kind == STRUCT:
            event, header, struct = "struct", _HDR_STRUCT, payload
            if visitor.account and struct.startswith(_LOGIN_PREFIX):
                visitor.logged_in = True
        else:
            event = "unstruct"
            header, unstruct, extra = payload
            contexts.append(extra)
        user_id = ""
        if visitor.logged_in:
            user_id = visitor.account or ""  # logged_in implies an account
            contexts.append(visitor.user_context)
        contexts += (visitor.session_context, str(visitor.event_index), "}}]}")
        c = visitor.page_chunks
        line = (
            f"{c[0]}{ts(collector + etl_lag)}\t{ts(collector)}\t{ts(created)}\t{event}\t{event_id}"
            f"{c[1]}{user_id}{c[2]}{''.join(contexts)}\t{struct}\t{unstruct}{c[3]}{pings}"
            f"{c[4]}{ts(created + send_delay)}{c[5]}{derived}\t{header}\t"
            f"{rng.getrandbits(128):032x}{c[6]}"  # event_fingerprint: an MD5-sized hex digest
        )
        return GeneratedEvent(line.encode(), self._uuid().encode(), t, visitor.duid)

    @staticmethod
    def _session_context(visitor: Visitor, first_event_id: str, first_event_tstamp: str) -> str:
        """The client_session entity up to its last property's value (``eventIndex``)."""
        entity = to_json(
            {
                "schema": _CLIENT_SESSION_SCHEMA,
                "data": {
                    "userId": visitor.duid,
                    "sessionId": visitor.session_id,
                    "sessionIndex": visitor.session_idx,
                    "previousSessionId": visitor.prev_session_id,
                    "storageMechanism": "COOKIE_1",
                    "firstEventId": first_event_id,
                    "firstEventTimestamp": first_event_tstamp.replace(" ", "T") + "Z",
                    "eventIndex": 0,
                },
            }
        )
        return "," + entity[: -len("0}}")]
