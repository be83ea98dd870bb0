"""Deterministic, realistic Segment `/v1/batch` bodies for the ingestion benchmark.

The stream imitates a busy e-commerce source relaying many visitors at once:
- a population (50,000 by default) whose activity follows a Zipf-Mandelbrot law: the top 1% of
  people start about 40% of the sessions, most people show up a few times or never;
- 60% of them are known customers (they already exist in Masivo, with their anonymous id linked;
  `Population.known_rows` seeds them), 25% are anonymous visitors who identify at some point of the
  stream (their earlier events must then be attached to the new customer), 15% never identify;
- sessions of a few events each (page views, product views, cart, checkout, orders, searches,
  promotions, app opens…) with Segment e-commerce spec properties, interleaved across visitors;
- about 10% identify (traits: email, name, phone, address, plan…), 85% track, 5% page/screen;
- unique messageIds, timestamps spread over the last days, and `sentAt` both on each message (what
  Masivo reads for clock-skew correction) and on the batch (where analytics-python and
  analytics-next put it).

Same seed, same `now` → byte-identical bodies.
"""

from __future__ import annotations

import itertools
import json
import random
import unicodedata
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

KNOWN, CONVERTS, ANONYMOUS = "known", "converts", "anonymous"
ZIPF_EXPONENT = 1.0
ZIPF_OFFSET = 20  # Zipf-Mandelbrot: flattens the very top, so no single "customer" is a bot
IDENTIFY_SHARE, PAGE_SHARE = 0.10, 0.05

FIRST_NAMES = (
    "Ana", "Luis", "María", "José", "Sofía", "Diego", "Valentina", "Carlos", "Camila", "Jorge",
    "Lucía", "Miguel", "Emma", "Liam", "Olivia", "Noah", "Ava", "Ethan", "Mia", "Lucas",
    "Chloé", "Hugo", "Léa", "Jonas", "Hannah", "Ben", "Aiko", "Kenji", "Priya", "Arjun",
)  # fmt: skip
LAST_NAMES = (
    "García", "Hernández", "López", "Martínez", "González", "Pérez", "Rodríguez", "Sánchez",
    "Ramírez", "Torres", "Smith", "Johnson", "Brown", "Williams", "Miller", "Davis", "Martin",
    "Bernard", "Dubois", "Müller", "Schmidt", "Fischer", "Rossi", "Bianchi", "Tanaka", "Sato",
    "Patel", "Sharma", "Kowalski", "Nowak",
)  # fmt: skip
DOMAINS = ("gmail.com", "hotmail.com", "yahoo.com", "outlook.com", "icloud.com", "proton.me")
PLACES = (  # city, country, time zone, locale, phone prefix (E.164) and subscriber digits
    ("Mexico City", "MX", "America/Mexico_City", "es-MX", ("+5255", 8)),
    ("Guadalajara", "MX", "America/Mexico_City", "es-MX", ("+5233", 8)),
    ("Monterrey", "MX", "America/Monterrey", "es-MX", ("+5281", 8)),
    ("New York", "US", "America/New_York", "en-US", ("+1212", 7)),
    ("Chicago", "US", "America/Chicago", "en-US", ("+1312", 7)),
    ("San Francisco", "US", "America/Los_Angeles", "en-US", ("+1415", 7)),
    ("Madrid", "ES", "Europe/Madrid", "es-ES", None),
    ("Bogotá", "CO", "America/Bogota", "es-CO", None),
    ("São Paulo", "BR", "America/Sao_Paulo", "pt-BR", None),
    ("Paris", "FR", "Europe/Paris", "fr-FR", None),
)
PLANS = ("free", "free", "free", "plus", "plus", "premium")
CATEGORIES = (
    "Shoes", "Apparel", "Accessories", "Electronics", "Home", "Kitchen", "Beauty", "Toys",
    "Sports", "Books", "Garden", "Pets",
)  # fmt: skip
ADJECTIVES = (
    "Classic", "Urban", "Trail", "Eco", "Smart", "Compact", "Deluxe", "Vintage", "Pro", "Soft",
    "Wireless", "Organic",
)  # fmt: skip
NOUNS = (
    "Sneaker", "Jacket", "Backpack", "Headphones", "Lamp", "Kettle", "Serum", "Puzzle",
    "Yoga Mat", "Novel", "Planter", "Dog Bed", "Watch", "Blender", "T-Shirt", "Speaker",
)  # fmt: skip
BRANDS = ("Acme", "Northwind", "Contoso", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay")
TRACK_EVENTS = {
    "Product Viewed": 30, "Product List Viewed": 12, "Products Searched": 8,
    "Product Added": 10, "Product Removed": 2, "Cart Viewed": 6, "Checkout Started": 4,
    "Payment Info Entered": 3, "Order Completed": 3, "Promotion Viewed": 5,
    "Promotion Clicked": 2, "Coupon Applied": 1, "Product Added to Wishlist": 2, "Signed In": 3,
    "Application Opened": 4, "Push Notification Opened": 2, "Email Link Clicked": 3,
}  # fmt: skip
SINGLE_PRODUCT_EVENTS = (
    "Product Viewed", "Product Added", "Product Removed", "Product Added to Wishlist",
)  # fmt: skip
SEARCHES = ("running shoes", "wireless earbuds", "rain jacket", "gift for mom", "yoga", "lamp")
WEB_PAGES = ("/", "/catalog", "/search", "/cart", "/checkout", "/account", "/sale", "/blog")
APP_SCREENS = ("Home", "Catalog", "Product Detail", "Cart", "Checkout", "Profile", "Orders")
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36",
)
DEVICES = {
    "ios": (("Apple", "iPhone15,2", "iOS", "18.1"), ("Apple", "iPhone14,5", "iOS", "17.6")),
    "android": (("Google", "Pixel 8", "Android", "14"), ("samsung", "SM-S918B", "Android", "14")),
}


@dataclass
class Person:
    user_id: str
    anonymous_id: str
    email: str
    first_name: str
    last_name: str
    place: tuple
    phone: str | None
    platform: str
    kind: str
    identified: bool


@dataclass
class Product:
    product_id: str
    sku: str
    name: str
    category: str
    brand: str
    price: float


def _hex(rng: random.Random, bits: int) -> str:
    return f"{rng.getrandbits(bits):0{bits // 4}x}"


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _zipf_cum_weights(size: int) -> list[float]:
    return list(
        itertools.accumulate(1 / (rank + ZIPF_OFFSET) ** ZIPF_EXPONENT for rank in range(size))
    )


class Population:
    """The people behind the stream, in activity order: index 0 is the most active."""

    def __init__(self, rng: random.Random, size: int, known=0.60, converts=0.25):
        self.people: list[Person] = []
        for number in range(size):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            place = rng.choice(PLACES)
            draw = rng.random()
            kind = KNOWN if draw < known else CONVERTS if draw < known + converts else ANONYMOUS
            phone = None
            if place[4] and rng.random() < 0.4:
                prefix, digits = place[4]
                phone = prefix + str(rng.randrange(2 * 10 ** (digits - 1), 10**digits))
            self.people.append(
                Person(
                    user_id=f"usr_{_hex(rng, 48)}",
                    anonymous_id=_uuid(rng),
                    email=_ascii(f"{first}.{last}.{number}@{rng.choice(DOMAINS)}").lower(),
                    first_name=first,
                    last_name=last,
                    place=place,
                    phone=phone,
                    platform=rng.choices(("web", "ios", "android"), (6, 2, 2))[0],
                    kind=kind,
                    identified=kind == KNOWN,
                )
            )
        self.cum_weights = _zipf_cum_weights(size)

    def pick(self, rng: random.Random) -> Person:
        return rng.choices(self.people, cum_weights=self.cum_weights)[0]

    def known_rows(self) -> list[tuple[str, str, str, str, str]]:
        """(user_id, anonymous_id, email, first_name, last_name) of the customers that exist."""
        return [
            (p.user_id, p.anonymous_id, p.email, p.first_name, p.last_name)
            for p in self.people
            if p.kind == KNOWN
        ]


@dataclass
class Session:
    person: Person
    clock: float
    remaining: int
    context: dict
    cart: list = field(default_factory=list)


class SegmentStream:
    """An endless, deterministic stream of Segment messages; `batches(n)` cuts it into bodies."""

    def __init__(
        self,
        *,
        seed: int = 1,
        customers: int = 50_000,
        products: int = 2_000,
        days: float = 3.0,
        interleave: int = 50,
        now: datetime | None = None,
    ):
        self.rng = random.Random(seed)
        self.now = (now or datetime.now(UTC)).timestamp()
        self.days = days
        self.population = Population(self.rng, customers)
        self.catalog = [self._product(number) for number in range(products)]
        self.product_weights = _zipf_cum_weights(products)
        self.sessions = [self._session() for _ in range(interleave)]
        eligible = sum(p.kind != ANONYMOUS for p in self.population.people) / customers
        self.identify_share = min(IDENTIFY_SHARE / max(eligible, 0.01), 0.5)
        self.counts: Counter = Counter()

    # -- building blocks ------------------------------------------------------------------

    def _product(self, number: int) -> Product:
        rng = self.rng
        return Product(
            product_id=f"prod_{number:05d}",
            sku=f"{rng.choice(CATEGORIES)[:3].upper()}-{rng.randrange(10_000, 99_999)}",
            name=f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}",
            category=rng.choice(CATEGORIES),
            brand=rng.choice(BRANDS),
            price=round(rng.lognormvariate(3.3, 0.8), 2),
        )

    def _pick_product(self) -> Product:
        return self.rng.choices(self.catalog, cum_weights=self.product_weights)[0]

    def _product_properties(self, product: Product, **extra) -> dict:
        currency = "MXN" if extra.pop("mexico", False) else "USD"
        return {
            "product_id": product.product_id,
            "sku": product.sku,
            "name": product.name,
            "category": product.category,
            "brand": product.brand,
            "price": product.price,
            "currency": currency,
            "url": f"https://shop.example.com/p/{product.product_id}",
            "image_url": f"https://cdn.example.com/img/{product.product_id}.jpg",
            **extra,
        }

    def _context(self, person: Person) -> dict:
        rng = self.rng
        _, _, timezone, locale, _ = person.place
        if person.platform == "web":
            path = rng.choice(WEB_PAGES)
            return {
                "library": {"name": "analytics.js", "version": "next-1.76.0"},
                "page": {
                    "path": path,
                    "referrer": rng.choice(("https://www.google.com/", "", "https://t.co/x")),
                    "search": "",
                    "title": f"Shop - {path.strip('/') or 'home'}",
                    "url": f"https://shop.example.com{path}",
                },
                "userAgent": rng.choice(USER_AGENTS),
                "locale": locale,
                "timezone": timezone,
                "campaign": (
                    {"name": "black-friday", "source": "newsletter", "medium": "email"}
                    if rng.random() < 0.2
                    else {}
                ),
            }
        manufacturer, model, os_name, os_version = rng.choice(DEVICES[person.platform])
        return {
            "library": {"name": f"analytics-{person.platform}", "version": "4.1.9"},
            "app": {"name": "Shop", "version": "7.12.0", "build": "7120", "namespace": "com.shop"},
            "device": {
                "id": person.anonymous_id,
                "manufacturer": manufacturer,
                "model": model,
                "type": person.platform,
            },
            "os": {"name": os_name, "version": os_version},
            "network": {"wifi": rng.random() < 0.6, "cellular": True, "carrier": "Telcel"},
            "screen": {"width": 393, "height": 852, "density": 3},
            "locale": locale,
            "timezone": timezone,
        }

    def _session(self) -> Session:
        person = self.population.pick(self.rng)
        start = self.now - self.rng.uniform(60, self.days * 86_400)
        length = min(1 + int(self.rng.expovariate(1 / 7)), 60)
        return Session(person=person, clock=start, remaining=length, context=self._context(person))

    # -- messages -------------------------------------------------------------------------

    def _track(self, session: Session) -> tuple[str, dict]:
        rng = self.rng
        name = rng.choices(list(TRACK_EVENTS), weights=list(TRACK_EVENTS.values()))[0]
        mexico = session.person.place[1] == "MX"
        if name in SINGLE_PRODUCT_EVENTS:
            product = self._pick_product()
            quantity = rng.choice((1, 1, 1, 2, 3))
            if name == "Product Added":
                session.cart.append((product, quantity))
            return name, self._product_properties(product, quantity=quantity, mexico=mexico)
        if name in ("Product List Viewed", "Cart Viewed", "Checkout Started", "Order Completed"):
            items = session.cart or [(self._pick_product(), 1) for _ in range(rng.randint(1, 4))]
            if name == "Product List Viewed":
                items = [(self._pick_product(), 1) for _ in range(rng.randint(4, 8))]
            products = [
                {"product_id": p.product_id, "sku": p.sku, "name": p.name, "price": p.price,
                 "quantity": q, "position": position + 1}
                for position, (p, q) in enumerate(items)
            ]  # fmt: skip
            subtotal = round(sum(p.price * q for p, q in items), 2)
            properties = {"products": products, "currency": "MXN" if mexico else "USD"}
            if name == "Product List Viewed":
                return name, properties | {
                    "list_id": f"list_{rng.randrange(40)}",
                    "category": rng.choice(CATEGORIES),
                }
            properties |= {"cart_id": f"cart_{_hex(rng, 40)}", "value": subtotal}
            if name == "Order Completed":
                tax, shipping = round(subtotal * 0.16, 2), rng.choice((0, 0, 4.99, 9.99))
                properties |= {
                    "order_id": f"ord_{_hex(rng, 48)}",
                    "checkout_id": f"chk_{_hex(rng, 40)}",
                    "subtotal": subtotal,
                    "tax": tax,
                    "shipping": shipping,
                    "discount": 0,
                    "total": round(subtotal + tax + shipping, 2),
                    "revenue": subtotal,
                    "coupon": rng.choice(("", "", "WELCOME10")),
                }
                session.cart = []
            return name, properties
        if name == "Products Searched":
            return name, {"query": rng.choice(SEARCHES), "results": rng.randrange(200)}
        if name in ("Promotion Viewed", "Promotion Clicked"):
            return name, {
                "promotion_id": f"promo_{rng.randrange(30)}",
                "creative": rng.choice(("banner-top", "carousel", "popup")),
                "name": rng.choice(("Black Friday", "Free shipping", "2x1")),
                "position": rng.choice(("home_top", "catalog_side")),
            }
        if name == "Coupon Applied":
            return name, {"coupon_id": "WELCOME10", "discount": 10, "cart_id": "cart_current"}
        if name == "Email Link Clicked":
            return name, {
                "campaign_id": f"cmp_{rng.randrange(50)}",
                "link_url": "https://shop.example.com/sale",
            }
        if name == "Push Notification Opened":
            return name, {
                "campaign_id": f"cmp_{rng.randrange(50)}",
                "title": "Your cart misses you",
            }
        if name == "Signed In":
            return name, {"method": rng.choice(("password", "google", "apple"))}
        return name, {"from_background": rng.random() < 0.5, "version": "7.12.0", "build": "7120"}

    def _traits(self, person: Person) -> dict:
        rng = self.rng
        city, country, timezone, locale, _ = person.place
        traits = {
            "email": person.email,
            "firstName": person.first_name,
            "lastName": person.last_name,
            "address": {"city": city, "country": country},
            "plan": rng.choice(PLANS),
            "loyalty_points": rng.randrange(5_000),
            "newsletter": rng.random() < 0.5,
            "favorite_category": rng.choice(CATEGORIES),
            "createdAt": _iso(self.now - rng.uniform(86_400, 900 * 86_400)),
        }
        if person.phone:
            traits["phone"] = person.phone
        if rng.random() < 0.3:
            traits["birthday"] = f"{rng.randrange(1955, 2006)}-{rng.randrange(1, 13):02d}-15"
        if rng.random() < 0.3:
            traits |= {"timezone": timezone, "locale": locale}
        return traits

    def message(self) -> dict:
        rng = self.rng
        slot = rng.randrange(len(self.sessions))
        session = self.sessions[slot]
        person = session.person
        session.clock += rng.uniform(1, 60)
        draw = rng.random()
        if draw < self.identify_share and person.kind != ANONYMOUS:
            message = {"type": "identify", "traits": self._traits(person)}
            person.identified = True
        elif self.identify_share <= draw < self.identify_share + PAGE_SHARE:
            if person.platform == "web":
                path = session.context["page"]["path"]
                message = {"type": "page", "name": path.strip("/").title() or "Home"}
                message["properties"] = {"path": path, "url": session.context["page"]["url"]}
            else:
                message = {"type": "screen", "name": rng.choice(APP_SCREENS), "properties": {}}
        else:
            name, properties = self._track(session)
            message = {"type": "track", "event": name, "properties": properties}
        if person.identified:
            message["userId"] = person.user_id
        message["anonymousId"] = person.anonymous_id
        message["messageId"] = (
            f"ajs-next-{_hex(rng, 128)}" if person.platform == "web" else _uuid(rng)
        )
        message["timestamp"] = _iso(min(session.clock, self.now))
        message["sentAt"] = _iso(self.now)
        message["context"] = session.context
        message["integrations"] = {}
        self.counts[message["type"]] += 1
        session.remaining -= 1
        if session.remaining <= 0:
            self.sessions[slot] = self._session()
        return message

    def batches(self, count: int, size: int = 100) -> list[dict]:
        return [
            {"batch": [self.message() for _ in range(size)], "sentAt": _iso(self.now)}
            for _ in range(count)
        ]


def serialize(body: dict) -> bytes:
    """As the SDKs send it: compact JSON, UTF-8."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
