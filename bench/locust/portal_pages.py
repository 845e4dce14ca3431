"""The pages bench/load reads, by the name its figures are printed under: the Locust users (portal_users.py) read
them, and bench/load.py warms the web server up with them before the clock starts."""

PAGES = {
    "MFA report": "/diagnostics/mfa/",
    "MFA report, filtered page 3": "/diagnostics/mfa/?classification=not_registered&page=3",
    "MFA readiness": "/diagnostics/mfa/readiness/",
    "DL inventory": "/dl/",
    "Address findings": "/diagnostics/address-repair/",
    "Jobs list": "/jobs/",
}
LIVE_LOG = "Live job log poll"
LIVE_LOG_URL = "/jobs/{job}/log/?after={after}"
