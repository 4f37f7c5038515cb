"""How a synthetic visitor moves through the shop, for :mod:`signals_stream.devtools.generator`.

A session is a walk over page kinds (home, category, product, search, cart, checkout steps,
confirmation, login, content). :class:`Journey` decides, per page view, which events the page
produces besides its page view and pings (ecommerce actions with their entities, site search,
login) and where the visitor goes next; the weights give the funnel
product views → add to cart (some removed) → checkout steps (15 % drop-off per step) → transactions.

All randomness comes from the generator's single ``random.Random``; events are returned as
:data:`Planned` tuples with their JSON already serialized, so the hot path only concatenates.
"""

from __future__ import annotations

import random
import re
from typing import Any

import orjson

from signals_stream.devtools.generator_data import (
    CATEGORIES,
    CHECKOUT_PATHS,
    CONTENT_PAGES,
    PAYMENT_METHODS,
    PRODUCTS,
    PRODUCTS_PER_CATEGORY,
    SEARCH_TERMS,
)

__all__ = [
    "CART",
    "CATEGORY",
    "CHECKOUT",
    "CONFIRM",
    "CONTENT",
    "DOC_HEIGHTS",
    "HOME",
    "LOGIN",
    "MEAN_DWELL_MS",
    "PAGE_PING",
    "PAGE_VIEW",
    "PRODUCT",
    "SEARCH",
    "SELF_DESCRIBING",
    "STRUCT",
    "Journey",
    "PageVisit",
    "Planned",
    "Visitor",
    "to_json",
]

_UNSTRUCT_SCHEMA = "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0"
_ECOM = "iglu:com.snowplowanalytics.snowplow.ecommerce/"
_ACTION_SCHEMA = _ECOM + "snowplow_ecommerce_action/jsonschema/1-0-2"
_PRODUCT_SCHEMA = _ECOM + "product/jsonschema/1-0-0"
_CART_SCHEMA = _ECOM + "cart/jsonschema/1-0-0"
_CHECKOUT_STEP_SCHEMA = _ECOM + "checkout_step/jsonschema/1-0-0"
_TRANSACTION_SCHEMA = _ECOM + "transaction/jsonschema/1-0-0"
_SITE_SEARCH_SCHEMA = "iglu:com.snowplowanalytics.snowplow/site_search/jsonschema/1-0-0"
# event_vendor, event_name, event_format, event_version (tab-joined), as Enrich sets them.
_HDR_ECOM = "com.snowplowanalytics.snowplow.ecommerce\tsnowplow_ecommerce_action\tjsonschema\t1-0-2"
_HDR_SEARCH = "com.snowplowanalytics.snowplow\tsite_search\tjsonschema\t1-0-0"
# se_category .. se_value (tab-joined).
_LOGIN_EVENT = "auth\tlogin\tpassword\t\t"
_NEWSLETTER_EVENT = "newsletter\tsubscribe\tfooter\t\t"

# Page kinds, and per kind the document height (px) and the mean time spent on the page.
HOME, CATEGORY, PRODUCT, SEARCH, CART, CHECKOUT, CONFIRM, LOGIN, CONTENT = range(9)
DOC_HEIGHTS = (4200, 3600, 3200, 2800, 1500, 1800, 1400, 1200, 5200)
MEAN_DWELL_MS = (15_000, 25_000, 40_000, 20_000, 20_000, 45_000, 15_000, 12_000, 60_000)

# Planned event kinds, and the planned event: (event time ms, kind, payload). The payload is None
# for a page view, the tab-joined pp_* fields for a ping, the tab-joined se_* fields for a struct
# event, and (event header, unstruct_event JSON, extra contexts JSON) for a self-describing event.
PAGE_VIEW, PAGE_PING, STRUCT, SELF_DESCRIBING = range(4)
Planned = tuple[int, int, Any]  # Any: the payload's type depends on the kind (see above)
_NextPage = tuple[int, int] | None

_SITE_NAME = "Acme Outfitters"


def to_json(value: object) -> str:
    """Compact JSON, as Enrich (circe) writes it."""
    return orjson.dumps(value).decode()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


_CATEGORY_SLUGS = tuple(_slug(category) for category in CATEGORIES)
_PRODUCT_PATHS = tuple(f"/p/{p.sku.lower()}/{_slug(p.name)}" for p in PRODUCTS)


class Visitor:
    """Mutable state of one visitor: identity, device, session, current page, cart."""

    __slots__ = (
        "account", "cart", "device", "duid", "event_index", "geo", "ip", "last_ms", "logged_in",
        "next_page", "nuid", "num", "page_chunks", "page_context", "page_end_ms", "page_url",
        "pages", "plan", "prev_session_id", "session_context", "session_id", "session_idx",
        "session_fields", "shopper", "skew_ms", "user_context",
    )  # fmt: skip

    def __init__(self, num: int, duid: str, nuid: str, account: str | None) -> None:
        self.num = num  # position in the population; unique, so it breaks heap ties
        self.duid = duid
        self.nuid = nuid
        self.account = account  # "U12345" for registered visitors
        self.logged_in = False
        self.device = 0
        self.geo = 0
        self.ip = ""
        self.skew_ms = 0  # device clock error
        self.cart: dict[int, int] = {}  # product index -> quantity; survives sessions
        self.session_idx = 0
        self.session_id = ""
        self.prev_session_id: str | None = None
        self.shopper = False  # this session has shopping intent
        self.event_index = 0  # events so far in this session
        self.pages = 0  # page views so far in this session
        self.session_fields: list[str] = []  # the TSV fields constant over the session
        self.page_chunks: tuple[str, ...] = ()  # ... plus the page's, pre-joined
        self.page_url = ("", "")  # (url, path) of the current page: the next page's referrer
        self.plan: list[Planned] = []  # the current page's events, reversed: pop() is next
        self.next_page: _NextPage = None
        self.page_end_ms = 0
        self.last_ms = 0
        # Pre-serialized pieces of the contexts JSON:
        self.page_context = ""  # the web_page entity; its id is the page view id
        self.user_context = ""  # ",{ecommerce user entity}", sent once logged in
        self.session_context = ""  # ",{client_session entity" up to "eventIndex":


class PageVisit:
    """The page view being planned: where its events go and when they may happen."""

    __slots__ = ("arg", "dwell", "on_load", "plan", "rng", "t0", "visitor")

    def __init__(
        self,
        plan: list[Planned],
        visitor: Visitor,
        t0: int,
        dwell: int,
        arg: int,
        rng: random.Random,
    ) -> None:
        self.plan = plan
        self.visitor = visitor
        self.t0 = t0
        self.dwell = dwell
        self.arg = arg  # which category / product / search term / step / article
        self.rng = rng
        self.on_load = t0 + rng.randint(150, 1_200)  # events tracked as the page renders

    def add(self, at_ms: int, kind: int, payload: object) -> None:
        self.plan.append((at_ms, kind, payload))

    def at_random(self, not_before_ms: int) -> int:
        """A time while the visitor is on the page, at least ``not_before_ms`` after it loaded."""
        return self.t0 + self.rng.randint(not_before_ms, self.dwell)


class Journey:
    """The shop's site map and the visitor's choices on each page.

    Args:
        rng: the generator's random source.
        currency: currency of prices, carts and transactions.
    """

    def __init__(self, rng: random.Random, currency: str) -> None:
        self.rng = rng
        self.currency = currency
        self._product_data = [
            {"id": p.sku, "name": p.name, "category": p.category, "price": p.price,
             "currency": currency, "brand": p.brand}
            for p in PRODUCTS
        ]  # fmt: skip
        self._handlers = (
            self._on_home, self._on_category, self._on_product, self._on_search, self._on_cart,
            self._on_checkout, self._on_confirm, self._on_login, self._on_content,
        )  # fmt: skip

    def landing(self, visitor: Visitor) -> tuple[int, int]:
        """The first page of a session."""
        if visitor.shopper:
            kinds, weights = (HOME, CATEGORY, PRODUCT, SEARCH), (30, 30, 30, 10)
        else:
            kinds, weights = (HOME, CATEGORY, PRODUCT, CONTENT), (30, 15, 15, 40)
        kind = self.rng.choices(kinds, weights)[0]
        return kind, self.page_arg(kind)

    def page_arg(self, kind: int) -> int:
        """Draw which category / product / search term / article a page of ``kind`` shows."""
        rng = self.rng
        if kind == CATEGORY:
            return rng.randrange(len(CATEGORIES))
        if kind == PRODUCT:
            return rng.randrange(len(PRODUCTS))
        if kind == SEARCH:
            return rng.randrange(len(SEARCH_TERMS))
        if kind == CONTENT:
            return rng.randrange(len(CONTENT_PAGES))
        return 0

    @staticmethod
    def location(kind: int, arg: int) -> tuple[str, str, str]:
        """Return (path, query, title) of a page."""
        if kind == HOME:
            return "/", "", f"{_SITE_NAME} – outdoor gear & apparel"
        if kind == CATEGORY:
            return f"/c/{_CATEGORY_SLUGS[arg]}", "", f"{CATEGORIES[arg]} | {_SITE_NAME}"
        if kind == PRODUCT:
            return _PRODUCT_PATHS[arg], "", f"{PRODUCTS[arg].name} | {_SITE_NAME}"
        if kind == SEARCH:
            query = "q=" + SEARCH_TERMS[arg].replace(" ", "+")
            return "/search", query, f"Search | {_SITE_NAME}"
        if kind == CART:
            return "/cart", "", f"Your cart | {_SITE_NAME}"
        if kind == CHECKOUT:
            return CHECKOUT_PATHS[arg], "", f"Checkout | {_SITE_NAME}"
        if kind == CONFIRM:
            return "/checkout/confirmation", "", f"Thank you! | {_SITE_NAME}"
        if kind == LOGIN:
            return "/account/login", "", f"Sign in | {_SITE_NAME}"
        path, title = CONTENT_PAGES[arg]
        return path, "", f"{title} | {_SITE_NAME}"

    def page_events(self, page: PageVisit, kind: int) -> _NextPage:
        """Add the page's own events to ``page.plan``; return the next page or ``None`` (exit)."""
        return self._handlers[kind](page)

    # -- one handler per page kind --

    def _on_home(self, page: PageVisit) -> _NextPage:
        visitor = page.visitor
        if visitor.account and not visitor.logged_in and self.rng.random() < 0.3:
            return LOGIN, 0
        if visitor.shopper:
            cart = 10 if visitor.cart else 0
            return self._pick(
                (CATEGORY, 45), (PRODUCT, 15), (SEARCH, 10), (CONTENT, 5), (CART, cart), (None, 20)
            )
        return self._pick((CONTENT, 35), (CATEGORY, 15), (PRODUCT, 10), (None, 40))

    def _on_category(self, page: PageVisit) -> _NextPage:
        rng, visitor = self.rng, page.visitor
        first = page.arg * PRODUCTS_PER_CATEGORY
        shown = rng.sample(range(first, first + PRODUCTS_PER_CATEGORY), 6)
        list_name = f"category:{_CATEGORY_SLUGS[page.arg]}"
        products = [self._product(p, position=i + 1) for i, p in enumerate(shown)]
        page.add(page.on_load, SELF_DESCRIBING, self._action("list_view", products, list_name))
        cart = 10 if visitor.shopper and visitor.cart else 0
        to_product = 60 if visitor.shopper else 35
        nxt = self._pick((PRODUCT, to_product), (CATEGORY, 10), (CART, cart), (None, 30))
        if nxt is None or nxt[0] != PRODUCT:
            return nxt
        position = rng.randrange(len(shown))  # the visitor clicks one of the listed products
        clicked = [self._product(shown[position], position=position + 1)]
        click_ms = page.t0 + page.dwell - rng.randint(50, 800)
        page.add(click_ms, SELF_DESCRIBING, self._action("list_click", clicked, list_name))
        return PRODUCT, shown[position]

    def _on_product(self, page: PageVisit) -> _NextPage:
        rng, visitor = self.rng, page.visitor
        viewed = [self._product(page.arg)]
        page.add(page.on_load, SELF_DESCRIBING, self._action("product_view", viewed))
        if not visitor.shopper:
            return self._pick((PRODUCT, 15), (CATEGORY, 10), (CONTENT, 15), (None, 60))
        if rng.random() < 0.35:
            quantity = 1 if rng.random() < 0.85 else 2
            visitor.cart[page.arg] = visitor.cart.get(page.arg, 0) + quantity
            entities = [self._product(page.arg, quantity=quantity), self._cart(visitor)]
            page.add(page.at_random(3_000), SELF_DESCRIBING, self._action("add_to_cart", entities))
            return self._pick((CART, 45), (PRODUCT, 25), (CATEGORY, 10), (None, 20))
        cart = 10 if visitor.cart else 0
        return self._pick((PRODUCT, 30), (CATEGORY, 20), (SEARCH, 5), (CART, cart), (None, 35))

    def _on_search(self, page: PageVisit) -> _NextPage:
        terms = SEARCH_TERMS[page.arg].split()
        data = {"terms": terms, "totalResults": self.rng.randint(0, 40), "pageResults": 12}
        search = self._self_describing(_HDR_SEARCH, _SITE_SEARCH_SCHEMA, data, [])
        page.add(page.on_load, SELF_DESCRIBING, search)
        return self._pick((PRODUCT, 60), (CATEGORY, 15), (None, 25))

    def _on_cart(self, page: PageVisit) -> _NextPage:
        rng, visitor = self.rng, page.visitor
        if visitor.cart and rng.random() < 0.3:
            removed = rng.choice(sorted(visitor.cart))
            quantity = visitor.cart.pop(removed)
            entities = [self._product(removed, quantity=quantity), self._cart(visitor)]
            action = self._action("remove_from_cart", entities)
            page.add(page.at_random(2_000), SELF_DESCRIBING, action)
        if not visitor.cart:
            return self._pick((CATEGORY, 40), (None, 60))
        if rng.random() < 0.6:
            if visitor.account and not visitor.logged_in and rng.random() < 0.6:
                return LOGIN, 0
            return CHECKOUT, 0
        return self._pick((PRODUCT, 35), (None, 65))

    def _on_login(self, page: PageVisit) -> _NextPage:
        visitor = page.visitor
        page.add(page.at_random(4_000), STRUCT, _LOGIN_EVENT)
        if visitor.cart and visitor.shopper and self.rng.random() < 0.8:
            return CHECKOUT, 0
        return self._pick((HOME, 50), (CATEGORY, 30), (None, 20))

    def _on_checkout(self, page: PageVisit) -> _NextPage:
        step: dict[str, object] = {"schema": _CHECKOUT_STEP_SCHEMA, "data": {"step": page.arg + 1}}
        entities = [step, self._cart(page.visitor)]
        page.add(page.on_load, SELF_DESCRIBING, self._action("checkout_step", entities))
        if self.rng.random() < 0.15:
            return None  # abandoned checkout; the cart stays for a later session
        if page.arg + 1 < len(CHECKOUT_PATHS):
            return CHECKOUT, page.arg + 1
        return CONFIRM, 0

    def _on_confirm(self, page: PageVisit) -> _NextPage:
        order = self._checkout_order(page.visitor)
        page.add(page.on_load, SELF_DESCRIBING, self._action("transaction", order))
        return self._pick((HOME, 10), (None, 90))

    def _on_content(self, page: PageVisit) -> _NextPage:
        if self.rng.random() < 0.03:
            page.add(page.at_random(2_000), STRUCT, _NEWSLETTER_EVENT)
        return self._pick((CONTENT, 30), (HOME, 15), (CATEGORY, 10), (None, 45))

    def _pick(self, *options: tuple[int | None, int]) -> _NextPage:
        """Draw the next page kind from weighted options (``None`` = leave) and its argument."""
        kinds = [kind for kind, _ in options]
        kind = self.rng.choices(kinds, [weight for _, weight in options])[0]
        return None if kind is None else (kind, self.page_arg(kind))

    # -- entities and self-describing events --

    def _product(self, index: int, *, quantity: int = 0, position: int = 0) -> dict[str, object]:
        data = dict(self._product_data[index])
        if quantity:
            data["quantity"] = quantity
        if position:
            data["position"] = position
        return {"schema": _PRODUCT_SCHEMA, "data": data}

    def _cart(self, visitor: Visitor) -> dict[str, object]:
        """The cart entity after the action it accompanies."""
        total = round(sum(PRODUCTS[i].price * q for i, q in visitor.cart.items()), 2)
        return {"schema": _CART_SCHEMA, "data": {"total_value": total, "currency": self.currency}}

    def _checkout_order(self, visitor: Visitor) -> list[dict[str, object]]:
        """The transaction entity plus one product entity per cart line; empties the cart."""
        rng = self.rng
        subtotal = round(sum(PRODUCTS[i].price * q for i, q in visitor.cart.items()), 2)
        shipping = 0.0 if subtotal >= 100 else 6.95
        tax = round(subtotal * 0.08, 2)
        transaction = {
            "transaction_id": f"T{rng.getrandbits(40):010X}",
            "revenue": round(subtotal + shipping + tax, 2),
            "currency": self.currency,
            "payment_method": rng.choice(PAYMENT_METHODS),
            "total_quantity": sum(visitor.cart.values()),
            "tax": tax,
            "shipping": shipping,
        }
        entities: list[dict[str, object]] = [{"schema": _TRANSACTION_SCHEMA, "data": transaction}]
        entities.extend(self._product(i, quantity=q) for i, q in sorted(visitor.cart.items()))
        visitor.cart.clear()
        return entities

    def _action(
        self, action_type: str, entities: list[dict[str, object]], name: str | None = None
    ) -> tuple[str, str, str]:
        data: dict[str, object] = {"type": action_type}
        if name is not None:
            data["name"] = name
        return self._self_describing(_HDR_ECOM, _ACTION_SCHEMA, data, entities)

    @staticmethod
    def _self_describing(
        header: str, schema: str, data: dict[str, object], entities: list[dict[str, object]]
    ) -> tuple[str, str, str]:
        wrapper = {"schema": _UNSTRUCT_SCHEMA, "data": {"schema": schema, "data": data}}
        return header, to_json(wrapper), "".join("," + to_json(entity) for entity in entities)
