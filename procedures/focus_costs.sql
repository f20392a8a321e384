-- Rebuilds one charge day of focus_costs (FinOps FOCUS 1.x columns) from cloud_billing.
--
-- Parameters (bound by the `sql` step of pipelines/cloud_billing_focus.yml, never spliced):
--   :billing_day  first instant of the day, YYYY-MM-DD (inclusive)
--   :next_day     the day after, YYYY-MM-DD (exclusive)
--   :run_id       the run's id, for lineage
--   :pipeline     the pipeline id, for lineage
--
-- Idempotent: the day is deleted first, then inserted again, so a re-run or a retry for the
-- same day leaves the same rows. Charges belong to the day their ChargePeriodStart falls in.
--
-- Portable SQL for SQLite and PostgreSQL: FOCUS column names are double-quoted so that
-- PostgreSQL keeps their case; only CASE, COALESCE, NULLIF and CURRENT_TIMESTAMP are used.

DELETE FROM focus_costs
WHERE "ChargePeriodStart" >= :billing_day
  AND "ChargePeriodStart" < :next_day;

INSERT INTO focus_costs (
    "BillingAccountId", "BillingAccountName", "BillingCurrency",
    "BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd",
    "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargeFrequency",
    "ProviderName", "PublisherName", "InvoiceIssuerName",
    "ServiceName", "ServiceCategory", "RegionId", "ResourceId", "ResourceName", "SkuId",
    "PricingQuantity", "PricingUnit", "ConsumedQuantity", "ConsumedUnit",
    "ListCost", "ContractedCost", "BilledCost", "EffectiveCost",
    "SubAccountId", "SubAccountName", "Tags",
    x_line_item_id, x_run_id, x_pipeline, x_ingested_at
)
SELECT
    b.billing_account_id,
    b.billing_account_name,
    b.currency,
    b.billing_period_start,
    b.billing_period_end,
    b.usage_start_time,
    b.usage_end_time,
    CASE b.cost_type
        WHEN 'regular' THEN 'Usage'
        WHEN 'commitment_fee' THEN 'Purchase'
        WHEN 'tax' THEN 'Tax'
        WHEN 'credit' THEN 'Credit'
        ELSE 'Adjustment'                      -- adjustment, rounding_error and anything new
    END,
    CASE WHEN b.cost_type = 'adjustment' THEN 'Correction' END,
    b.sku_description,
    CASE b.cost_type
        WHEN 'regular' THEN 'Usage-Based'
        WHEN 'commitment_fee' THEN 'Recurring'
        ELSE 'One-Time'
    END,
    CASE b.provider WHEN 'aws' THEN 'AWS' WHEN 'gcp' THEN 'Google Cloud' ELSE b.provider END,
    -- Marketplace products are published by their seller but invoiced by the provider.
    COALESCE(NULLIF(b.seller_name, ''),
             CASE b.provider WHEN 'aws' THEN 'AWS' WHEN 'gcp' THEN 'Google Cloud' ELSE b.provider END),
    CASE b.provider WHEN 'aws' THEN 'AWS' WHEN 'gcp' THEN 'Google Cloud' ELSE b.provider END,
    b.service_description,
    CASE
        WHEN b.service_description IN ('Compute Engine', 'Cloud Run', 'Amazon Elastic Compute Cloud',
                                       'AWS Lambda', 'Savings Plans for AWS Compute usage') THEN 'Compute'
        WHEN b.service_description IN ('Cloud Storage', 'Amazon Simple Storage Service') THEN 'Storage'
        WHEN b.service_description IN ('BigQuery') THEN 'Analytics'
        WHEN b.service_description IN ('Cloud SQL', 'Amazon Relational Database Service') THEN 'Databases'
        WHEN b.service_description IN ('Vertex AI', 'Amazon Bedrock') THEN 'AI and Machine Learning'
        WHEN b.service_description IN ('Networking', 'AWS Data Transfer') THEN 'Networking'
        WHEN b.service_description IN ('Amazon CloudWatch', 'Cloud Monitoring', 'Cloud Logging')
            THEN 'Management and Governance'
        ELSE 'Other'
    END,
    NULLIF(b.region, ''),
    NULLIF(b.resource_id, ''),
    NULLIF(b.resource_name, ''),
    NULLIF(b.sku_id, ''),
    b.usage_amount_in_pricing_units,
    NULLIF(b.pricing_unit, ''),
    CASE WHEN b.cost_type = 'regular' THEN b.usage_amount END,
    CASE WHEN b.cost_type = 'regular' THEN NULLIF(b.usage_unit, '') END,
    COALESCE(b.list_cost, b.cost),
    b.cost,
    b.cost,
    b.cost + COALESCE(b.credits_amount, 0),
    b.project_id,
    b.project_name,
    b.labels,
    b.line_item_id,
    :run_id,
    :pipeline,
    CURRENT_TIMESTAMP
FROM cloud_billing AS b
WHERE b.usage_start_time >= :billing_day
  AND b.usage_start_time < :next_day;
