-- Refers to a column events does not have.
SELECT event_id,
       amount_usd
FROM events;
