-- Rebuild one day of events_daily from events.
DELETE FROM events_daily WHERE day = :day;

INSERT INTO events_daily (day, org, events, billed)
SELECT e.day, e.org, count(*), sum(e.amount * r.rate)
FROM events AS e
LEFT JOIN rates AS r ON r.org = e.org
WHERE e.day = :day
GROUP BY e.day, e.org;
