-- Data test for validate_data (type: sql): GenAI usage that has no price.
--
-- A request whose (provider, model) has no row in genai_pricing gets a NULL cost, so its
-- spend is missing from genai_costs_daily.cost_usd. Returns one row per unpriced model since
-- :since (YYYY-MM-DD); the check passes when it returns nothing. Fix it by adding the model
-- to the price list (examples/data/genai_pricing.csv in the sample project).

SELECT
    u.provider,
    u.model,
    COUNT(*) AS unpriced_requests,
    MIN(u.usage_date) AS first_seen,
    MAX(u.usage_date) AS last_seen
FROM genai_usage AS u
LEFT JOIN genai_pricing AS p
    ON p.provider = u.provider
   AND p.model = u.model
WHERE p.model IS NULL
  AND u.usage_date >= :since
GROUP BY u.provider, u.model;
