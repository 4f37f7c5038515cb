"""The fictional shop that :mod:`.generator` simulates: catalogue, devices, places.

Static, hand-written data (no randomness here): 50 products in 5 categories, a handful of real
browser user agents, ten cities with MaxMind-style geo fields, and the traffic sources a landing
page view can come from (with the referer-parser and campaign enrichment results Enrich would add).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

__all__ = [
    "CATEGORIES",
    "CHECKOUT_PATHS",
    "CLICK_TARGETS",
    "CONTENT_PAGES",
    "DEVICES",
    "DEVICE_WEIGHTS",
    "GEOS",
    "GEO_WEIGHTS",
    "PAYMENT_METHODS",
    "PRODUCTS",
    "PRODUCTS_PER_CATEGORY",
    "SEARCH_TERMS",
    "SOURCES",
    "SOURCE_WEIGHTS",
    "Device",
    "Geo",
    "Product",
    "Source",
]


@dataclass(frozen=True, slots=True)
class Product:
    """One catalogue item, as the ecommerce ``product`` entity describes it."""

    sku: str
    name: str
    category: str
    price: float
    brand: str


class Device(NamedTuple):
    """A browser: user agent and viewport / screen sizes in CSS pixels."""

    useragent: str
    view_width: int
    view_height: int
    screen_width: int
    screen_height: int


class Geo(NamedTuple):
    """A place, with the fields of Enrich's IP-lookup enrichment (lat/lon as Java float text)."""

    country: str
    region: str
    city: str
    zipcode: str
    latitude: str
    longitude: str
    region_name: str
    timezone: str
    language: str


class Source(NamedTuple):
    """Where a session's landing page view comes from.

    ``referrer`` empty means direct traffic (or an email client, which sends none). ``campaign``
    is (mkt_medium, mkt_source, mkt_term, mkt_content, mkt_campaign) taken from ``utm_query``;
    ``paid`` sources also carry a Google click id (``gclid``) in the URL.
    """

    weight: int
    referrer: str
    medium: str
    source: str
    utm_query: str
    campaign: tuple[str, str, str, str, str] | None
    paid: bool


_CATALOGUE_SPEC: tuple[tuple[str, tuple[tuple[str, int], ...]], ...] = (
    (
        "Footwear",
        (
            ("Trail Runner 2", 12900),
            ("Summit Hiking Boot", 18900),
            ("Ridge Approach Shoe", 14500),
            ("Lakeside Sandal", 5900),
            ("City Sneaker", 8900),
            ("Alpine Mountaineering Boot", 34900),
            ("Trail Runner GTX", 15900),
            ("Winter Snow Boot", 16900),
            ("Camp Slipper", 3900),
            ("Road Racer", 13900),
        ),
    ),
    (
        "Jackets",
        (
            ("Storm Shell Jacket", 24900),
            ("Down Parka", 32900),
            ("Fleece Midlayer", 7900),
            ("Insulated Vest", 11900),
            ("Rain Poncho", 3500),
            ("Softshell Jacket", 15900),
            ("Windbreaker", 8900),
            ("Ski Jacket", 29900),
            ("Packable Puffer", 17900),
            ("Trail Anorak", 12900),
        ),
    ),
    (
        "Backpacks",
        (
            ("Daypack 22L", 8900),
            ("Trekking Pack 45L", 17900),
            ("Expedition Pack 65L", 27900),
            ("Hydration Pack 12L", 7500),
            ("Travel Duffel 60L", 12900),
            ("Sling Bag 8L", 4500),
            ("Commuter Pack 28L", 11900),
            ("Kids Daypack 14L", 4900),
            ("Roll-Top Dry Bag 20L", 3900),
            ("Camera Pack 25L", 15900),
        ),
    ),
    (
        "Camping",
        (
            ("Ultralight Tent 2P", 39900),
            ("Family Tent 4P", 44900),
            ("Sleeping Bag -5°C", 21900),
            ("Sleeping Pad", 9900),
            ("Camp Stove", 6900),
            ("Titanium Pot Set", 5900),
            ("Headlamp 400lm", 4900),
            ("Camp Chair", 7900),
            ("Water Filter", 4500),
            ("Hammock", 5500),
        ),
    ),
    (
        "Accessories",
        (
            ("Merino Beanie", 3500),
            ("Trekking Poles", 8900),
            ("Wool Socks 3-Pack", 2900),
            ("Sun Hat", 3200),
            ("Insulated Bottle 1L", 3900),
            ("Touchscreen Gloves", 4500),
            ("Neck Gaiter", 1900),
            ("Polarized Sunglasses", 9900),
            ("Baseplate Compass", 3900),
            ("First Aid Kit", 2900),
        ),
    ),
)
_BRANDS = ("Acme", "Northpeak", "Trailcraft")

PRODUCTS_PER_CATEGORY = 10
CATEGORIES: tuple[str, ...] = tuple(category for category, _ in _CATALOGUE_SPEC)
# Products of category i are PRODUCTS[i * PRODUCTS_PER_CATEGORY : (i + 1) * PRODUCTS_PER_CATEGORY].
PRODUCTS: tuple[Product, ...] = tuple(
    Product(
        sku=f"SKU-{1001 + n}",
        name=name,
        category=category,
        price=cents / 100,
        brand=_BRANDS[n % len(_BRANDS)],
    )
    for n, (category, name, cents) in enumerate(
        (category, name, cents) for category, items in _CATALOGUE_SPEC for name, cents in items
    )
)
assert all(len(items) == PRODUCTS_PER_CATEGORY for _, items in _CATALOGUE_SPEC)

_WEBKIT = "AppleWebKit/537.36 (KHTML, like Gecko)"
_SAFARI = "AppleWebKit/605.1.15 (KHTML, like Gecko)"
DEVICES: tuple[Device, ...] = (
    Device(
        f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) {_WEBKIT} Chrome/124.0.0.0 Safari/537.36",
        1536,
        730,
        1920,
        1080,
    ),
    Device(
        f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) {_SAFARI} Version/17.4 Safari/605.1.15",
        1440,
        789,
        1440,
        900,
    ),
    Device(
        "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        1920,
        955,
        1920,
        1080,
    ),
    Device(
        f"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) {_SAFARI} Version/17.4 "
        "Mobile/15E148 Safari/604.1",
        390,
        664,
        390,
        844,
    ),
    Device(
        f"Mozilla/5.0 (Linux; Android 14; Pixel 8) {_WEBKIT} Chrome/124.0.0.0 Mobile Safari/537.36",
        412,
        783,
        412,
        915,
    ),
    Device(
        f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) {_WEBKIT} Chrome/124.0.0.0 Safari/537.36 "
        "Edg/124.0.0.0",
        1280,
        632,
        1366,
        768,
    ),
)
DEVICE_WEIGHTS: tuple[int, ...] = (30, 15, 5, 25, 20, 5)

GEOS: tuple[Geo, ...] = (
    Geo("US", "CA", "San Francisco", "94107", "37.7697", "-122.3933", "California",
        "America/Los_Angeles", "en-US"),
    Geo("US", "NY", "New York", "10001", "40.7484", "-73.9967", "New York", "America/New_York",
        "en-US"),
    Geo("US", "TX", "Austin", "78701", "30.2711", "-97.7437", "Texas", "America/Chicago", "en-US"),
    Geo("GB", "ENG", "London", "EC1A", "51.5164", "-0.093", "England", "Europe/London", "en-GB"),
    Geo("DE", "BE", "Berlin", "10115", "52.5321", "13.3849", "Land Berlin", "Europe/Berlin",
        "de-DE"),
    Geo("FR", "IDF", "Paris", "75001", "48.8608", "2.3413", "Île-de-France", "Europe/Paris",
        "fr-FR"),
    Geo("NL", "NH", "Amsterdam", "1012", "52.374", "4.8897", "North Holland", "Europe/Amsterdam",
        "nl-NL"),
    Geo("CA", "ON", "Toronto", "M5V", "43.6426", "-79.3871", "Ontario", "America/Toronto", "en-CA"),
    Geo("AU", "NSW", "Sydney", "2000", "-33.8688", "151.2093", "New South Wales",
        "Australia/Sydney", "en-AU"),
    Geo("BR", "SP", "São Paulo", "01310", "-23.5505", "-46.6333", "São Paulo",
        "America/Sao_Paulo", "pt-BR"),
)  # fmt: skip
GEO_WEIGHTS: tuple[int, ...] = (12, 12, 8, 14, 10, 8, 6, 8, 6, 6)

SOURCES: tuple[Source, ...] = (
    Source(35, "", "", "", "", None, False),
    Source(20, "https://www.google.com/", "search", "Google", "", None, False),
    Source(5, "https://www.bing.com/", "search", "Bing", "", None, False),
    Source(6, "https://www.facebook.com/", "social", "Facebook", "", None, False),
    Source(4, "https://l.instagram.com/", "social", "Instagram", "", None, False),
    Source(
        15, "", "", "",
        "utm_source=newsletter&utm_medium=email&utm_campaign=spring_sale",
        ("email", "newsletter", "", "", "spring_sale"), False,
    ),
    Source(
        15, "https://www.google.com/", "search", "Google",
        "utm_source=google&utm_medium=cpc&utm_term=hiking+boots&utm_campaign=brand_search",
        ("cpc", "google", "hiking boots", "", "brand_search"), True,
    ),
)  # fmt: skip
SOURCE_WEIGHTS: tuple[int, ...] = tuple(source.weight for source in SOURCES)

CONTENT_PAGES: tuple[tuple[str, str], ...] = (
    ("/blog/how-to-choose-hiking-boots", "How to choose hiking boots"),
    ("/blog/layering-101", "Layering 101"),
    ("/blog/best-trails-this-spring", "The best trails this spring"),
    ("/help/shipping", "Shipping"),
    ("/help/returns", "Returns"),
    ("/about", "About us"),
)
SEARCH_TERMS: tuple[str, ...] = (
    "rain jacket",
    "boots",
    "tent",
    "merino",
    "backpack 30l",
    "headlamp",
    "socks",
)
CLICK_TARGETS: tuple[str, ...] = (
    "nav-menu",
    "hero-banner",
    "size-guide",
    "reviews-tab",
    "image-gallery",
    "footer-link",
)
PAYMENT_METHODS: tuple[str, ...] = ("card", "paypal", "apple_pay", "klarna")
CHECKOUT_PATHS: tuple[str, ...] = ("/checkout/shipping", "/checkout/payment", "/checkout/review")
