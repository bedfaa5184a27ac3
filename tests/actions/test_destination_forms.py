"""Allowed private networks match the address as written, or its IPv4-mapped form: never the IPv4
address inside a 6to4 or NAT64 address, which routes off this machine."""

import pytest

from actions.delivery.destinations import DestinationRefused, check_destination_ip


@pytest.fixture
def allowed(settings):
    settings.CONDUIT_ALLOWED_PRIVATE_NETWORKS = ["127.0.0.0/8", "10.0.0.0/8"]
    return settings


@pytest.mark.parametrize("ip", ["127.0.0.1", "10.1.2.3", "::ffff:127.0.0.1", "::ffff:a01:203"])
def test_an_allowed_network_and_its_ipv4_mapped_form_pass(allowed, ip):
    check_destination_ip(ip)


@pytest.mark.parametrize(
    "ip",
    [
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "2002:7f00:1:0:0:0:0:1",
        "2002:a01:203::1",  # 6to4 of 10.1.2.3
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b::10.1.2.3",  # NAT64 of 10.1.2.3, written with its IPv4 part
        "0064:ff9b:0000:0000:0000:0000:7f00:0001",  # the same, every zero written
    ],
)
def test_6to4_and_nat64_forms_of_an_allowed_address_are_refused(allowed, ip):
    with pytest.raises(DestinationRefused, match=r"through a 6to4 relay or NAT64"):
        check_destination_ip(ip)


@pytest.mark.parametrize(
    ("network", "ip"), [("2002:7f00:1::/48", "2002:7f00:1::5"), ("64:ff9b::/96", "64:ff9b::a01:203")]
)
def test_a_6to4_or_nat64_network_listed_as_such_passes(settings, network, ip):
    settings.CONDUIT_ALLOWED_PRIVATE_NETWORKS = [network]
    check_destination_ip(ip)


def test_a_public_address_inside_6to4_still_passes_without_any_list(settings):
    settings.CONDUIT_ALLOWED_PRIVATE_NETWORKS = []
    check_destination_ip("2002:808:808::1")  # 6to4 of 8.8.8.8: public
