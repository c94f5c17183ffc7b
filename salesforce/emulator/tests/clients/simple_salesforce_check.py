"""Drives sf-emulator with simple-salesforce, unmodified, over HTTPS.

Run by tests/simple_salesforce.rs, which starts the emulator with a generated CA and passes:
SF_URL (https://127.0.0.1:PORT), SF_USERNAME, SF_PASSWORD, SF_SECURITY_TOKEN, SF_CLIENT_ID,
SF_CLIENT_SECRET, and REQUESTS_CA_BUNDLE (the emulator's CA, so requests verifies it).
Exits 0 when every check passes; an assertion names the first one that did not.
"""

import datetime
import os
import sys

import requests
from simple_salesforce import Salesforce, SalesforceLogin
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceMalformedRequest,
)

VERSION = "62.0"
URL = os.environ["SF_URL"]
USERNAME = os.environ["SF_USERNAME"]
PASSWORD = os.environ["SF_PASSWORD"]
SECURITY_TOKEN = os.environ["SF_SECURITY_TOKEN"]


def check(condition, what):
    if not condition:
        raise AssertionError(what)
    print("ok:", what)


def soap_session():
    """Session login through the SOAP partner login() (scratch_url points it at the emulator)."""
    session_id, instance = SalesforceLogin(
        username=USERNAME,
        password=PASSWORD,
        security_token=SECURITY_TOKEN,
        scratch_url=URL,
        sf_version=VERSION,
    )
    check(instance == URL.split("://", 1)[1], f"SOAP login serverUrl names the instance ({instance})")
    try:
        SalesforceLogin(username=USERNAME, password="wrong", security_token=SECURITY_TOKEN,
                        scratch_url=URL, sf_version=VERSION)
        check(False, "a wrong password is refused")
    except SalesforceAuthenticationFailed as e:
        check(e.code == "INVALID_LOGIN", f"a wrong password is INVALID_LOGIN ({e.code})")
    return Salesforce(session_id=session_id, instance=instance, version=VERSION)


def oauth_session():
    """OAuth client credentials (the token call by hand: simple-salesforce would post to
    *.salesforce.com), then simple-salesforce from instance_url + access_token."""
    r = requests.post(f"{URL}/services/oauth2/token", data={
        "grant_type": "client_credentials",
        "client_id": os.environ["SF_CLIENT_ID"],
        "client_secret": os.environ["SF_CLIENT_SECRET"],
    }, timeout=30)
    check(r.status_code == 200, "OAuth token")
    body = r.json()
    check(body["instance_url"] == URL, "instance_url is the https public URL")
    ident = requests.get(body["id"], headers={"Authorization": "Bearer " + body["access_token"]},
                         timeout=30)
    check(ident.status_code == 200 and ident.json()["username"] == USERNAME, "identity URL")
    return Salesforce(instance_url=body["instance_url"], session_id=body["access_token"],
                      version=VERSION)


def crud(sf):
    created = sf.Case.create({"Subject": "From simple-salesforce", "Origin": "Web",
                              "SuppliedEmail": "ann@example.com"})
    check(created["success"] and created["id"].startswith("500"), "create Case")
    case_id = created["id"]
    check(sf.Case.update(case_id, {"Status": "Working"}) == 204, "update Case (204)")
    check(sf.Case.get(case_id)["Status"] == "Working", "get Case")
    check(sf.Case.upsert("Handoff_Session_Id__c/sess-1", {"Subject": "upserted"}) == 201,
          "upsert creates (201)")
    check(sf.Case.upsert("Handoff_Session_Id__c/sess-1", {"Subject": "again"}) == 200,
          "upsert updates (200)")
    by_ext = sf.Case.get_by_custom_id("Handoff_Session_Id__c", "sess-1")
    check(by_ext["Subject"] == "again", "get by external id")
    try:
        sf.Case.create({"Subject": "bad", "SuppliedEmail": "jos\u00e9@example.com"})
        check(False, "a non-ASCII email is refused")
    except SalesforceMalformedRequest as e:
        check(e.content[0]["errorCode"] == "INVALID_EMAIL_ADDRESS", "INVALID_EMAIL_ADDRESS")
    return case_id


def queries(sf):
    records = [{"attributes": {"type": "Case"}, "Subject": f"bulk {i}"} for i in range(200)]
    for _ in range(2):
        result = sf.restful("composite/sobjects", method="POST",
                            json={"allOrNone": True, "records": records})
        check(all(r["success"] for r in result), "sObject Collections create 200")
    page = sf.query("SELECT Id FROM Case", headers={"Sforce-Query-Options": "batchSize=200"})
    check(not page["done"] and len(page["records"]) == 200, "query pages at batchSize 200")
    every = sf.query_all("SELECT Id, Subject FROM Case",
                         headers={"Sforce-Query-Options": "batchSize=200"})
    check(every["totalSize"] == len(every["records"]) >= 402, "query_all follows nextRecordsUrl")
    who = sf.query("SELECT CreatedBy.Name, LastModifiedBy.Username FROM Case LIMIT 1")
    check(who["records"][0]["CreatedBy"]["Name"], "CreatedBy relationship")
    full = sf.query("SELECT FIELDS(ALL) FROM Case LIMIT 200")
    check("Handoff_Session_Id__c" in full["records"][0], "FIELDS(ALL)")
    org = sf.query("SELECT Id, Name FROM Organization")
    check(org["totalSize"] == 1, "Organization")


def metadata(sf):
    describe = sf.Case.describe()
    status = next(f for f in describe["fields"] if f["name"] == "Status")
    check(any(v["value"] == "New" for v in status["picklistValues"]), "describe picklistValues")
    check(status["soapType"] == "xsd:string" and status["filterable"], "describe attributes")
    limits = sf.limits()
    check(limits["DailyApiRequests"]["Max"] > 0 and "DataStorageMB" in limits, "limits")


def replication(sf, case_id):
    check(sf.Case.delete(case_id) == 204, "delete Case (204)")
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(hours=1)
    deleted = sf.Case.deleted(start, end)
    check(any(r["id"] == case_id for r in deleted["deletedRecords"]), "deleted")
    updated = sf.Case.updated(start, end)
    check(case_id not in updated["ids"] and len(updated["ids"]) > 0, "updated")


def main():
    sf = soap_session()
    case_id = crud(sf)
    queries(sf)
    metadata(sf)
    replication(sf, case_id)
    oauth = oauth_session()
    check(oauth.query("SELECT Id FROM Organization")["totalSize"] == 1, "OAuth session queries")
    print("simple-salesforce: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
