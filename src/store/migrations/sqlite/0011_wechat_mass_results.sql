-- MASSSENDJOBFINISH (issue 4): WeChat's report on a mass send (群发), recorded once per
-- (appid, MsgID) by the callback whichever instance WeChat pushes it to; the delivery that
-- made the send shows it by its msg_id (deliveries show, the API, the console).
CREATE TABLE wechat_mass_results (
    appid          TEXT    NOT NULL,
    msg_id         TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    total_count    INTEGER,
    filter_count   INTEGER,
    sent_count     INTEGER,
    error_count    INTEGER,
    received_at    INTEGER NOT NULL,
    times_received INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (appid, msg_id)
);
