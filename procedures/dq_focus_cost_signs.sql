-- Data test for validate_data (type: sql): FOCUS costs with the wrong sign.
--
-- Usage, purchases and taxes never cost less than nothing, and a credit never costs more
-- than nothing; EffectiveCost can't exceed BilledCost when all that lies between them is
-- credits (0 or negative). Returns the offending line items charged since :since
-- (YYYY-MM-DD); the check passes when it returns nothing.

SELECT
    x_line_item_id,
    "ChargeCategory",
    "ChargePeriodStart",
    "ServiceName",
    "BilledCost",
    "EffectiveCost"
FROM focus_costs
WHERE "ChargePeriodStart" >= :since
  AND (
        ("ChargeCategory" IN ('Usage', 'Purchase', 'Tax') AND ("BilledCost" < 0 OR "EffectiveCost" < 0))
     OR ("ChargeCategory" = 'Credit' AND "BilledCost" > 0)
     OR "EffectiveCost" > "BilledCost"
      );
