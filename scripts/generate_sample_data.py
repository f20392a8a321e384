#!/usr/bin/env python3
"""Writes Sluice's FinOps sample data: GenAI usage, GenAI prices and a cloud billing export.

The output is deterministic: the same --seed and sizes give byte-identical files, so the
committed samples under examples/data/ can be regenerated and diffed.

    python3 scripts/generate_sample_data.py                      # the committed samples
    python3 scripts/generate_sample_data.py --rows 1000000 --out bench-out/data

Files (column headers are the column names of the raw tables in schemas/):

  genai_usage.csv           one row per GenAI API request (schemas/genai_usage_raw.json).
                            About 5% of rows are re-delivered exact duplicates of a recent row,
                            about 1% are updated versions of a recent row with a later
                            updated_at, and --bad-rows rows (3 by default) do not fit the schema
                            on purpose, to exercise `on_bad_row: quarantine`.
  genai_pricing.csv         a price per 1M input and output tokens for every provider/model
                            pair in the usage file, plus one superseded older price
                            (schemas/genai_pricing_raw.json).
  cloud_billing_export.csv  GCP/AWS-style billing line items: usage, credits, taxes, a savings
                            plan fee, a correction, and about 3% restated lines with a later
                            export_time (schemas/cloud_billing_raw.json).

Rows are streamed to disk as they are made; memory stays bounded (a window of recent rows
is kept to draw duplicates and updates from), so --rows 1000000 is fine.

Fields that contain a comma or a double quote are quoted as RFC 4180 says (quotes doubled).
Lines end with LF. Standard library only.
"""

import argparse
import csv
import datetime as dt
import os
import random
import sys
from collections import deque

USAGE_COLUMNS = [
    "request_id", "request_ts", "updated_at", "usage_date", "org_slug", "project_id",
    "provider", "model", "operation", "input_tokens", "output_tokens", "latency_ms",
    "status", "request_tags",
]

PRICING_COLUMNS = [
    "provider", "model", "input_price_per_1m", "output_price_per_1m", "currency", "price_updated_at",
]

BILLING_COLUMNS = [
    "line_item_id", "export_time", "provider", "billing_account_id", "billing_account_name",
    "billing_period_start", "billing_period_end", "invoice_month", "project_id", "project_name",
    "service_id", "service_description", "sku_id", "sku_description", "seller_name",
    "usage_start_time", "usage_end_time", "region", "resource_id", "resource_name",
    "usage_amount", "usage_unit", "usage_amount_in_pricing_units", "pricing_unit",
    "list_cost", "cost", "credits_amount", "currency", "cost_type", "labels",
]

# provider, model, operation kind, weight, USD per 1M input tokens, USD per 1M output tokens.
# Sample prices in the spirit of the providers' public price lists in mid-2025; check the
# providers' pages before using them for anything real.
MODELS = [
    ("openai", "gpt-4o", "chat", 14, "2.50", "10.00"),
    ("openai", "gpt-4o-mini", "chat", 16, "0.15", "0.60"),
    ("openai", "gpt-4.1", "chat", 6, "2.00", "8.00"),
    ("openai", "o3-mini", "chat", 4, "1.10", "4.40"),
    ("openai", "text-embedding-3-small", "embedding", 6, "0.02", "0.00"),
    ("anthropic", "claude-sonnet-4", "chat", 16, "3.00", "15.00"),
    ("anthropic", "claude-3-5-haiku", "chat", 12, "0.80", "4.00"),
    ("anthropic", "claude-opus-4", "chat", 4, "15.00", "75.00"),
    ("google", "gemini-2.5-pro", "chat", 6, "1.25", "10.00"),
    ("google", "gemini-2.5-flash", "chat", 10, "0.30", "2.50"),
    ("google", "gemini-2.0-flash", "chat", 6, "0.10", "0.40"),
]

# An older price that a later row supersedes: merge_dedupe (latest_wins by price_updated_at)
# must keep the newer one.
SUPERSEDED_PRICES = [
    ("google", "gemini-2.5-flash", "0.15", "0.60", "USD", "2025-04-17T00:00:00Z"),
]
CURRENT_PRICES_UPDATED_AT = "2025-06-01T00:00:00Z"

ORGS = {
    "acme": ["search", "support-bot", "data-science"],
    "globex": ["assistant", "doc-qa"],
    "initech": ["tps-reports", "helpdesk"],
    "hooli": ["nucleus", "ads-copy", "eval"],
    "umbrella": ["lab-notes"],
}
ORG_WEIGHTS = [30, 20, 15, 25, 10]

# Free-text request tags; several hold commas or double quotes so the CSV needs quoting.
TAGS = [
    "env=prod",
    "env=staging",
    "env=prod,team=search",
    "env=prod,team=platform,tier=gold",
    'env=prod,feature="summarize, long"',
    'app="Support bot, EU",env=prod',
    "env=dev,owner=ml-research",
]

MASK64 = (1 << 64) - 1


def scrambled_id(prefix, counter, salt):
    """A unique, random-looking id: multiplying by an odd constant is a bijection mod 2^64."""
    return "%s%016x" % (prefix, ((counter + 1) * 0x9E3779B97F4A7C15 + salt) & MASK64)


def iso(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def open_csv(out_dir, name):
    path = os.path.join(out_dir, name)
    handle = open(path, "w", newline="", encoding="utf-8")
    writer = csv.writer(handle, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    return path, handle, writer


# MARK: GenAI usage

def usage_row(rng, counter, salt, moment):
    org = rng.choices(list(ORGS), weights=ORG_WEIGHTS)[0]
    project = rng.choice(ORGS[org])
    provider, model, kind, _, _, _ = rng.choices(MODELS, weights=[m[3] for m in MODELS])[0]
    if kind == "embedding":
        operation = "embedding"
        input_tokens = max(8, int(rng.lognormvariate(6.2, 0.8)))
        output_tokens = 0
    else:
        operation = "responses" if provider == "openai" and rng.random() < 0.3 else "chat"
        input_tokens = min(200_000, max(20, int(rng.lognormvariate(7.0, 1.1))))
        output_tokens = min(16_000, max(1, int(rng.lognormvariate(5.6, 0.9))))
    status = "succeeded"
    if rng.random() < 0.02:
        status = "failed"
        output_tokens = 0
    latency_ms = int(150 + output_tokens * rng.uniform(8, 25) + rng.expovariate(1 / 120))
    updated = moment + dt.timedelta(milliseconds=latency_ms) + dt.timedelta(seconds=rng.randint(1, 90))
    tags = rng.choice(TAGS) if rng.random() < 0.3 else ""
    return [
        scrambled_id("req_", counter, salt), iso(moment), iso(updated), moment.date().isoformat(),
        org, "%s-%s" % (org, project), provider, model, operation,
        input_tokens, output_tokens, latency_ms, status, tags,
    ]


def updated_version(rng, row):
    """The provider re-reports a request later with final numbers (e.g. a stream that finished)."""
    new = list(row)
    updated = dt.datetime.strptime(row[2], "%Y-%m-%dT%H:%M:%SZ") + dt.timedelta(minutes=rng.randint(30, 36 * 60))
    new[2] = iso(updated)
    if row[8] != "embedding":
        if row[12] == "failed" and rng.random() < 0.5:
            new[12] = "succeeded"
        new[10] = int(row[10]) + rng.randint(1, 400)
    return new


def bad_row(rng, kind, counter, salt, moment):
    """Rows that do not fit the schema; ingest quarantines them with their line and reason."""
    row = usage_row(rng, counter, salt, moment)
    if kind == 0:
        row[9] = "n/a"                   # input_tokens is INT64
    elif kind == 1:
        row[0] = ""                      # request_id is REQUIRED
    else:
        row[3] = "%s-31" % row[3][:7]    # a day that does not exist (June has 30)
        if row[3][5:7] in ("01", "03", "05", "07", "08", "10", "12"):
            row[3] = "%s-32" % row[3][:7]
    return row


def write_usage(out_dir, rows, days, start, seed, bad_rows):
    rng = random.Random(seed)
    salt = random.Random(seed + 1).getrandbits(64)
    path, handle, writer = open_csv(out_dir, "genai_usage.csv")
    writer.writerow(USAGE_COLUMNS)
    recent = deque(maxlen=1000)   # the window duplicates and updates are drawn from
    span = dt.timedelta(days=days).total_seconds()
    bad_positions = {int(rows * (k + 1) / (bad_rows + 1)): k % 3 for k in range(bad_rows)}
    counter = 0
    counts = {"new": 0, "duplicate": 0, "update": 0, "bad": 0}
    used_models = set()
    with handle:
        for index in range(rows):
            # Time advances through the window, with a little jitter, so the file reads in order.
            offset = min(span - 1, max(0.0, index * span / rows + rng.uniform(-30, 30)))
            moment = start + dt.timedelta(seconds=int(offset))
            draw = rng.random()
            if index in bad_positions:
                row = bad_row(rng, bad_positions[index], counter, salt, moment)
                counter += 1
                counts["bad"] += 1
            elif draw < 0.05 and len(recent) >= 50:
                position = rng.randrange(len(recent))
                row = recent[position]
                counts["duplicate"] += 1
            elif draw < 0.06 and len(recent) >= 50:
                position = rng.randrange(len(recent))
                row = updated_version(rng, recent[position])
                recent[position] = row
                counts["update"] += 1
            else:
                row = usage_row(rng, counter, salt, moment)
                counter += 1
                recent.append(row)
                counts["new"] += 1
            used_models.add((row[6], row[7]))
            writer.writerow(row)
    return path, counts, used_models


def write_pricing(out_dir, used_models):
    path, handle, writer = open_csv(out_dir, "genai_pricing.csv")
    with handle:
        writer.writerow(PRICING_COLUMNS)
        for provider, model, input_price, output_price, currency, updated in SUPERSEDED_PRICES:
            writer.writerow([provider, model, input_price, output_price, currency, updated])
        written = 0
        for provider, model, _, _, input_price, output_price in MODELS:
            if (provider, model) in used_models:
                writer.writerow([provider, model, input_price, output_price, "USD", CURRENT_PRICES_UPDATED_AT])
                written += 1
    return path, written + len(SUPERSEDED_PRICES)


# MARK: Cloud billing

BILLING_ACCOUNTS = {
    "gcp": ("0A1B2C-3D4E5F-6A7B8C", "Acme Corp (Google Cloud)"),
    "aws": ("111122223333", "Acme Corp (AWS payer)"),
}

PROJECTS = {
    "gcp": [("acme-search-prod", "Search, production"), ("acme-data-platform", "Data platform"),
            ("acme-ml-sandbox", "ML sandbox")],
    "aws": [("444455556666", "search-prod"), ("777788889999", "analytics")],
}

# provider, service id, service, sku id, sku description, usage unit, pricing unit,
# usage units per pricing unit, list price per pricing unit, discount off list,
# typical pricing quantity per hourly line, resource kind, weight
CATALOG = [
    ("gcp", "6F81-5844-456A", "Compute Engine", "2E27-4F75-95CD", "N2 Instance Core running in Americas",
     "seconds", "hour", 3600, 0.031611, 0.20, 16, "instance", 10),
    ("gcp", "6F81-5844-456A", "Compute Engine", "6A9E-9B11-3C54", "N2 Instance Ram running in Americas",
     "byte-seconds", "gibibyte hour", 3600 * 1024 ** 3, 0.004237, 0.20, 64, "instance", 8),
    ("gcp", "6F81-5844-456A", "Compute Engine", "D973-5D65-BAB2", "Storage PD Capacity, SSD (Americas)",
     "byte-seconds", "gibibyte month", 730 * 3600 * 1024 ** 3, 0.17, 0.0, 0.8, "disk", 5),
    ("gcp", "95FF-2EF5-5EA1", "Cloud Storage", "E5F0-6A5D-7BAD", "Standard Storage US Multi-region",
     "byte-seconds", "gibibyte month", 730 * 3600 * 1024 ** 3, 0.026, 0.0, 12.0, "bucket", 6),
    ("gcp", "24E6-581D-38E5", "BigQuery", "3362-E469-6BEF", "Analysis, on-demand (US multi-region)",
     "bytes", "tebibyte", 1024 ** 4, 6.25, 0.0, 0.4, "dataset", 6),
    ("gcp", "C7E2-9256-1C43", "Vertex AI", "A1F2-7C3B-11D0", "Gemini 2.5 Pro input tokens, text, <=200K context",
     "count", "1M tokens", 1_000_000, 1.25, 0.0, 3.0, "endpoint", 6),
    ("gcp", "C7E2-9256-1C43", "Vertex AI", "B4E1-2D6A-98F7", "Gemini 2.5 Pro output tokens, text, <=200K context",
     "count", "1M tokens", 1_000_000, 10.0, 0.0, 0.5, "endpoint", 6),
    ("gcp", "152E-C115-5142", "Cloud Run", "CF4E-A0C7-E3BF", "CPU allocation time, tier 1",
     "seconds", "vCPU-second", 1, 0.000024, 0.0, 2400, "service", 5),
    ("gcp", "E505-1604-58F8", "Networking", "9DE9-9092-B3BC", "Network Internet Data Transfer Out from Americas to Americas",
     "bytes", "gibibyte", 1024 ** 3, 0.12, 0.0, 6.0, "", 4),
    ("aws", "AmazonEC2", "Amazon Elastic Compute Cloud", "DQ578CGN99KG6ECF", "$0.192 per On Demand Linux m6i.xlarge Instance Hour",
     "Hrs", "Hrs", 1, 0.192, 0.0, 4, "instance", 10),
    ("aws", "AmazonEC2", "Amazon Elastic Compute Cloud", "8VCNEHQMSCQS4P39", "$0.08 per GB-month of General Purpose (gp3) provisioned storage, US East (N. Virginia)",
     "GB-Mo", "GB-Mo", 1, 0.08, 0.0, 2.5, "volume", 5),
    ("aws", "AmazonS3", "Amazon Simple Storage Service", "WP9ANXZGBYYSGJEA", "$0.023 per GB, first 50 TB / month of storage used",
     "GB-Mo", "GB-Mo", 1, 0.023, 0.0, 40.0, "bucket", 6),
    ("aws", "AmazonRDS", "Amazon Relational Database Service", "QZ3Z5Z4VXKX3K7C4", "$0.36 per RDS db.r6g.large Multi-AZ instance hour, PostgreSQL",
     "Hrs", "Hrs", 1, 0.36, 0.0, 1, "db", 6),
    ("aws", "AmazonBedrock", "Amazon Bedrock", "7R6XT4GVCZ3JZ5QY", "Claude Sonnet 4 input tokens, on-demand, us-east-1",
     "tokens", "1K tokens", 1000, 0.003, 0.0, 900.0, "", 6),
    ("aws", "AmazonBedrock", "Amazon Bedrock", "M2P4J8YQH6N5C3XR", "Claude Sonnet 4 output tokens, on-demand, us-east-1",
     "tokens", "1K tokens", 1000, 0.015, 0.0, 120.0, "", 6),
    ("aws", "AWSLambda", "AWS Lambda", "TG3M4CAGBA3NYQBH", "AWS Lambda - Total Compute - US East (N. Virginia)",
     "Lambda-GB-Second", "Lambda-GB-Second", 1, 0.0000166667, 0.0, 30000, "function", 5),
    ("aws", "AmazonCloudWatch", "Amazon CloudWatch", "9ZKXZJX7RQRXG3PW", "$0.50 per GB, custom log data ingested",
     "GB", "GB", 1, 0.50, 0.0, 1.5, "", 4),
]

MARKETPLACE = ("aws", "prod-7kq2xvhb3mvg4", "Streamlake Observability (AWS Marketplace)", "SLK-PRO-HOURLY",
               "Streamlake Pro, hourly subscription", "Hrs", "Hrs", 1, 0.85, 0.0, 1, "", 0)
MARKETPLACE_SELLER = "Streamlake Analytics, Inc."

# Units that only come in whole numbers.
WHOLE_UNITS = {"seconds", "byte-seconds", "bytes", "count", "tokens"}

REGIONS = {"gcp": ["us-central1", "us-east1", "europe-west1"], "aws": ["us-east-1", "us-west-2", "eu-west-1"]}

LABELS = ['{"env":"prod","team":"search"}', '{"env":"prod","team":"data"}', '{"env":"dev","team":"ml"}',
          '{"cost_center":"cc-1042","env":"prod"}', '{}']


def resource_for(provider, kind, project_id, region, rng):
    if not kind:
        return "", ""
    number = rng.randint(1, 4)
    if provider == "gcp":
        name = "%s-%s-%d" % (project_id.split("-")[1], kind, number)
        paths = {
            "instance": "//compute.googleapis.com/projects/%s/zones/%s-a/instances/%s",
            "disk": "//compute.googleapis.com/projects/%s/zones/%s-a/disks/%s",
            "bucket": "//storage.googleapis.com/projects/%s/%s/buckets/%s",
            "dataset": "//bigquery.googleapis.com/projects/%s/%s/datasets/%s",
            "endpoint": "//aiplatform.googleapis.com/projects/%s/locations/%s/endpoints/%s",
            "service": "//run.googleapis.com/projects/%s/locations/%s/services/%s",
        }
        return paths[kind] % (project_id, region, name), name
    name = "%s-%d" % (kind, number)
    arns = {
        "instance": "arn:aws:ec2:%s:%s:instance/i-%017x" % (region, project_id, rng.getrandbits(68)),
        "volume": "arn:aws:ec2:%s:%s:volume/vol-%017x" % (region, project_id, rng.getrandbits(68)),
        "bucket": "arn:aws:s3:::acme-%s-%d" % (project_id[-4:], number),
        "db": "arn:aws:rds:%s:%s:db:acme-%d" % (region, project_id, number),
        "function": "arn:aws:lambda:%s:%s:function:acme-%d" % (region, project_id, number),
    }
    return arns[kind], name


def money(value):
    return "%.6f" % value


def quantity(value):
    text = ("%.6f" % value).rstrip("0").rstrip(".")
    return text or "0"


def billing_line(rng, counter, salt, item, day, hour, cost_type="regular", cost_override=None,
                 description=None, seller=""):
    (provider, service_id, service, sku_id, sku_description, usage_unit, pricing_unit, per_pricing_unit,
     list_price, discount, typical, kind, _) = item
    account_id, account_name = BILLING_ACCOUNTS[provider]
    project_id, project_name = rng.choice(PROJECTS[provider])
    region = rng.choice(REGIONS[provider])
    start = dt.datetime.combine(day, dt.time(hour, 0), tzinfo=dt.timezone.utc)
    # Usage comes in hourly lines; taxes, fees, credits and corrections cover the whole day.
    end = start + dt.timedelta(hours=1 if cost_type == "regular" else 24)
    period_start = start.replace(day=1, hour=0)
    period_end = (period_start + dt.timedelta(days=32)).replace(day=1)
    export = end + dt.timedelta(hours=rng.randint(2, 9), minutes=rng.randint(0, 59))
    labels = rng.choice(LABELS)
    if cost_type == "regular":
        pricing_quantity = typical * rng.uniform(0.4, 1.6)
        usage_amount = pricing_quantity * per_pricing_unit
        if usage_unit in WHOLE_UNITS:
            usage_amount = max(1, round(usage_amount))
            pricing_quantity = usage_amount / per_pricing_unit
        list_cost = pricing_quantity * list_price
        cost = list_cost * (1 - discount)
        credits = -cost * rng.uniform(0.05, 0.3) if provider == "gcp" and service == "Compute Engine" and rng.random() < 0.5 else 0.0
        resource_id, resource_name = resource_for(provider, kind, project_id, region, rng)
        fields = (quantity(usage_amount), usage_unit, quantity(pricing_quantity), pricing_unit)
    else:
        # Taxes, credits, fees and corrections carry no usage and no resource.
        cost = cost_override
        list_cost = cost if cost_type == "commitment_fee" else 0.0
        credits = 0.0
        resource_id, resource_name = "", ""
        fields = ("", "", "", "")
        labels = ""
        if cost_type in ("tax", "credit", "adjustment", "rounding_error"):
            region = ""
    return [
        scrambled_id("li_", counter, salt), iso(export), provider, account_id, account_name,
        iso(period_start), iso(period_end), period_start.strftime("%Y%m"), project_id, project_name,
        service_id, service, sku_id if cost_type == "regular" or cost_type == "commitment_fee" else "",
        description or sku_description, seller,
        iso(start), iso(end), region, resource_id, resource_name,
        fields[0], fields[1], fields[2], fields[3],
        money(list_cost), money(cost), money(credits), "USD", cost_type, labels,
    ]


def write_billing(out_dir, target_rows, days, start, seed):
    rng = random.Random(seed + 2)
    salt = random.Random(seed + 3).getrandbits(64)
    path, handle, writer = open_csv(out_dir, "cloud_billing_export.csv")
    weights = [item[-1] for item in CATALOG]
    by_service = {item[2]: item for item in CATALOG}
    savings_plan = ("aws", "ComputeSavingsPlans", "Savings Plans for AWS Compute usage", "SP-COMPUTE-1YR-NU",
                    "1-year Compute Savings Plan, No Upfront, recurring fee", "", "", 1, 0, 0, 0, "", 0)
    counter = 0
    written = 0
    restated = 0
    recent = deque(maxlen=200)
    # Per day: usage lines, plus one tax line per provider, one savings plan fee, one credit
    # (every other day), one marketplace line; once: a correction and a rounding line.
    fixed_per_day = 5
    usage_per_day = max(1, (target_rows - days * fixed_per_day - 2) * 100 // 103 // days)
    with handle:
        writer.writerow(BILLING_COLUMNS)

        def emit(row):
            nonlocal written
            writer.writerow(row)
            written += 1

        for day_index in range(days):
            day = (start + dt.timedelta(days=day_index)).date()
            day_cost = {"gcp": 0.0, "aws": 0.0}
            for _ in range(usage_per_day):
                item = rng.choices(CATALOG, weights=weights)[0]
                row = billing_line(rng, counter, salt, item, day, rng.randrange(24))
                counter += 1
                day_cost[item[0]] += float(row[25])
                recent.append(row)
                emit(row)
                if rng.random() < 0.03:
                    # A restatement: the same line item exported again later with a corrected cost.
                    old = rng.choice(recent)
                    new = list(old)
                    new[1] = iso(dt.datetime.strptime(old[1], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
                                 + dt.timedelta(days=1, hours=rng.randint(0, 20)))
                    factor = rng.uniform(0.9, 1.1)
                    for column in (24, 25, 26):
                        new[column] = money(float(old[column]) * factor)
                    emit(new)
                    restated += 1
            emit(billing_line(rng, counter, salt, MARKETPLACE, day, 0, seller=MARKETPLACE_SELLER))
            counter += 1
            emit(billing_line(rng, counter, salt, savings_plan, day, 0, cost_type="commitment_fee",
                              cost_override=48.0, description=savings_plan[4]))
            counter += 1
            for provider, service in (("gcp", "Compute Engine"), ("aws", "Amazon Elastic Compute Cloud")):
                emit(billing_line(rng, counter, salt, by_service[service], day, 0, cost_type="tax",
                                  cost_override=round(day_cost[provider] * 0.0725, 6),
                                  description="Sales tax, %s" % ("Google Cloud" if provider == "gcp" else "AWS")))
                counter += 1
            if day_index % 2 == 0:
                emit(billing_line(rng, counter, salt, by_service["Amazon Bedrock"], day, 0, cost_type="credit",
                                  cost_override=-25.0, description="Promotional credit, Amazon Bedrock"))
                counter += 1
            if day_index == 1:
                emit(billing_line(rng, counter, salt, by_service["BigQuery"], day, 0, cost_type="adjustment",
                                  cost_override=-12.5, description="Correction: BigQuery analysis billed twice on 2025-05-30"))
                counter += 1
                emit(billing_line(rng, counter, salt, by_service["Cloud Storage"], day, 0, cost_type="rounding_error",
                                  cost_override=0.000004, description="Rounding error"))
                counter += 1
    return path, written, restated


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=3000, help="usage rows to write, duplicates and updates included (default 3000)")
    parser.add_argument("--billing-rows", type=int, default=600, help="billing line items, about (default 600)")
    parser.add_argument("--days", type=int, default=7, help="days the data covers (default 7)")
    parser.add_argument("--start-date", default="2025-06-02", help="first day, YYYY-MM-DD (default 2025-06-02)")
    parser.add_argument("--bad-rows", type=int, default=3, help="usage rows that break the schema on purpose (default 3)")
    parser.add_argument("--seed", type=int, default=20250602, help="random seed (default 20250602)")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(here), "examples", "data"),
                        help="output folder (default examples/data in the project)")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.days < 1 or args.billing_rows < 1 or args.bad_rows < 0 or args.bad_rows >= args.rows:
        parser.error("--rows, --days and --billing-rows must be positive, --bad-rows between 0 and --rows - 1")
    start = dt.datetime.strptime(args.start_date, "%Y-%m-%d").replace(tzinfo=dt.timezone.utc)
    os.makedirs(args.out, exist_ok=True)

    usage_path, counts, used_models = write_usage(args.out, args.rows, args.days, start, args.seed, args.bad_rows)
    pricing_path, price_rows = write_pricing(args.out, used_models)
    billing_path, billing_rows, restated = write_billing(args.out, args.billing_rows, args.days, start, args.seed)

    print("%s: %d rows (%d new, %d duplicates, %d updates, %d bad)" % (
        usage_path, args.rows, counts["new"], counts["duplicate"], counts["update"], counts["bad"]))
    print("%s: %d rows" % (pricing_path, price_rows))
    print("%s: %d rows (%d restated)" % (billing_path, billing_rows, restated))


if __name__ == "__main__":
    main(sys.argv[1:])
