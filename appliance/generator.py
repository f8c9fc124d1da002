"""`sluice generate-events`: realistic Segment-spec traffic of every call type."""

import random
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

_PAGES = [("Home", "/"), ("Pricing", "/pricing"), ("Docs", "/docs"), ("Blog", "/blog/launch")]
_SCREENS = ["Home", "Cart", "Settings", "Product Detail"]
_PRODUCTS = [
    {"product_id": "sku-100", "name": "Trail Shoe", "price": 89.0, "category": "Shoes"},
    {"product_id": "sku-200", "name": "Rain Jacket", "price": 149.0, "category": "Outerwear"},
    {"product_id": "sku-300", "name": "Wool Socks", "price": 14.5, "category": "Accessories"},
]
_BATCH = 100


def generate(url: str, write_key: str, *, count: int, users: int) -> int:
    """Send `count` events spread over `users` users in batches; return how many were accepted."""
    rng = random.Random()
    people = [_person(i) for i in range(max(users, 1))]
    sent = 0
    with httpx.Client(base_url=url, auth=(write_key, ""), timeout=30) as client:
        while sent < count:
            batch = [_event(rng, rng.choice(people)) for _ in range(min(_BATCH, count - sent))]
            answer = client.post("/v1/batch", json={"batch": batch, "sentAt": _now()})
            if answer.status_code != 200:
                raise SystemExit(f"gateway answered {answer.status_code}: {answer.text}")
            sent += len(batch)
    return sent


def _person(i: int) -> dict[str, Any]:
    return {
        "userId": f"user-{i:05d}",
        "anonymousId": str(uuid.uuid4()),
        "traits": {"email": f"user{i}@example.com", "name": f"User {i}", "plan": "pro"},
        "company": {"id": f"org-{i % 7}", "name": f"Company {i % 7}", "employees": 10 + i % 90},
    }


def _event(rng: random.Random, person: dict[str, Any]) -> dict[str, Any]:
    base: dict[str, Any] = {
        "messageId": str(uuid.uuid4()),
        "anonymousId": person["anonymousId"],
        "userId": person["userId"],
        "timestamp": _now(),
        "context": {
            "library": {"name": "sluice-generate-events", "version": "1"},
            "locale": "en-US",
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0",
        },
    }
    kind = rng.choices(
        ["track", "page", "identify", "screen", "group", "alias"], weights=[50, 25, 10, 8, 5, 2]
    )[0]
    base["type"] = kind
    if kind == "track":
        product = rng.choice(_PRODUCTS)
        base["event"], base["properties"] = rng.choice(
            [
                ("Product Viewed", product),
                ("Product Added", {**product, "quantity": rng.randint(1, 3)}),
                (
                    "Order Completed",
                    {
                        "order_id": str(uuid.uuid4()),
                        "total": product["price"],
                        "currency": "USD",
                        "products": [product],
                    },
                ),
                ("Signed Up", {"method": rng.choice(["email", "google"])}),
            ]
        )
    elif kind == "page":
        name, path = rng.choice(_PAGES)
        base["name"] = name
        base["properties"] = {"path": path, "url": f"https://shop.example.com{path}"}
    elif kind == "screen":
        base["name"] = rng.choice(_SCREENS)
    elif kind == "identify":
        base["traits"] = person["traits"]
    elif kind == "group":
        base["groupId"] = person["company"]["id"]
        base["traits"] = person["company"]
    else:
        base["previousId"] = person["anonymousId"]
    return base


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
