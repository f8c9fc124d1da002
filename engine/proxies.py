"""Who the client is behind the load balancers and proxies an operator trusts: the peer's
address, or the client's from `X-Forwarded-For` when a trusted proxy sent the request (whose
other forwarded headers are believed too)."""

from ipaddress import IPv4Network, IPv6Network, ip_address

Networks = tuple[IPv4Network | IPv6Network, ...]


def client_address(peer: str, forwarded: str | None, trusted: Networks) -> str:
    if not forwarded or not is_trusted(peer, trusted):
        return peer
    # Right to left: the first hop that is not one of our proxies is the client.
    hops = [hop.strip() for hop in forwarded.split(",")]
    for hop in reversed(hops):
        if not _within(hop, trusted):
            return hop if _is_address(hop) else peer
    return hops[0] if _is_address(hops[0]) else peer


def is_trusted(peer: str, trusted: Networks) -> bool:
    """Whether the peer is one of the proxies whose forwarded headers are believed."""
    return bool(trusted) and _within(peer, trusted)


def _within(address: str, networks: Networks) -> bool:
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def _is_address(text: str) -> bool:
    try:
        ip_address(text)
    except ValueError:
        return False
    return True
