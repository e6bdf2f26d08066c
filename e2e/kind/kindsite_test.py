#!/usr/bin/env python3
"""Tests of kindsite.py, the part of the kind e2e that runs without Docker: reading an example CR's
Secrets and node selector, and adapting it to a kind site. The CR is shaped like the seed's
spoke1 (e2e/lab/spoke1.yaml) under the DmvpnSpoke contract of issue 6. Prints a cargo-style
`test result:` line for scripts/test."""

import copy
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import kindsite as kind_site  # noqa: E402

SPOKE1 = {
    "apiVersion": "dmvpn.io/v1alpha1",
    "kind": "DmvpnSpoke",
    "metadata": {"name": "spoke1"},
    "spec": {
        "gateway": {"nodeSelector": {"dmvpn.io/gateway": "true"}},
        "tunnel": {"address": "10.1.1.2/24"},
        "nhrp": {"networkId": 1, "authenticationSecretRef": {"name": "nhrp-auth", "key": "key"}},
        "ipsec": {"preSharedKeySecretRef": {"name": "dmvpn-psk"}},
        "hubs": [{"tunnelAddress": "10.1.1.1", "nbmaAddress": "198.18.0.1"}],
        "routes": {
            "advertise": ["192.168.2.0/24"],
            "static": [{"prefix": "192.168.1.0/24", "via": "10.1.1.1"},
                       {"prefix": "172.31.0.0/16", "via": "10.1.1.1"}],
        },
    },
}
LANS = {"192.168.1.0/24": ["10.10.0.0/16", "10.110.0.0/16"],
        "192.168.2.0/24": ["10.20.0.0/16", "10.120.0.0/16"]}


class SiteTest(unittest.TestCase):
    def test_secrets_default_key_psk(self):
        self.assertEqual(kind_site.secrets(SPOKE1), [("dmvpn-psk", "psk"), ("nhrp-auth", "key")])

    def test_selector_match_labels(self):
        self.assertEqual(kind_site.selector(SPOKE1), {"dmvpn.io/gateway": "true"})

    def test_adapt_hub_address_and_lans(self):
        cr = kind_site.adapt(copy.deepcopy(SPOKE1), "172.18.0.4", LANS)["spec"]
        self.assertEqual(cr["hubs"], [{"tunnelAddress": "10.1.1.1", "nbmaAddress": "172.18.0.4"}])
        self.assertEqual(cr["routes"]["advertise"], LANS["192.168.2.0/24"])
        self.assertEqual([r["prefix"] for r in cr["routes"]["static"]],
                         LANS["192.168.1.0/24"] + ["172.31.0.0/16"])
        self.assertEqual(cr["tunnel"], SPOKE1["spec"]["tunnel"])

    def test_adapt_dash_keeps_nbma(self):
        cr = kind_site.adapt(copy.deepcopy(SPOKE1), "-", {})["spec"]
        self.assertEqual(cr["hubs"][0]["nbmaAddress"], "198.18.0.1")

    def test_certificates_refused(self):
        cr = {"spec": {"ipsec": {"certificateSecretRef": {"name": "tls"}}}}
        with self.assertRaises(SystemExit):
            kind_site.secrets(cr)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    failed = len(result.failures) + len(result.errors)
    passed = result.testsRun - failed
    print(f"test result: {'ok' if failed == 0 else 'FAILED'}. {passed} passed; {failed} failed; "
          "0 ignored; 0 measured; 0 filtered out")
    sys.exit(1 if failed else 0)
