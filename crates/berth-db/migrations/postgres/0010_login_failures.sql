-- Failed logins per account and source address: throttling and lock-out apply to the address that
-- failed, so an attacker's guesses cannot lock the real user out from their own machine.
-- accounts.failed_logins keeps the account-wide count since the last success (a slower, delay-only
-- guard against guesses spread over many addresses).
CREATE TABLE login_failures (
    account_id      BIGINT  NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    source          TEXT    NOT NULL,
    failures        BIGINT  NOT NULL,
    last_failed_at  BIGINT  NOT NULL,
    PRIMARY KEY (account_id, source)
);
