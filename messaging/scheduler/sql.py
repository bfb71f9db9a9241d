"""The decision in one PostgreSQL statement: every live study's participants, their last reading,
last cuff sync and low-battery episode (index lookups per row, no query per participant), the rules
of ``candidates.participant_candidates``, minus messages already in the log, within the caps.

Keep it in step with ``candidates.py``: tests run both over the same week and compare.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import connection

from .candidates import CAP_DAYS, CAPPED, Candidate
from .windows import StudyWindows

DECIDE = """
WITH win AS (
  SELECT * FROM unnest(%(w_study)s::bigint[], %(w_name)s::text[], %(w_start)s::time[], %(w_end)s::time[])
    AS w(study_id, name, ws, we)
), proto AS (
  SELECT * FROM unnest(%(p_study)s::bigint[], %(p_duration)s::int[], %(p_day_end)s::time[])
    AS r(study_id, duration_days, day_end)
), base AS (
  SELECT p.id AS pid, p.study_id, p.code, p.timezone AS tz, p.start_date, p.end_date,
         p.link_status, p.link_status_changed_at, c.language,
         CASE
           WHEN c.preferred_channel = 'sms' AND c.phone <> '' AND c.sms_opted_out_at IS NULL THEN 'sms'
           WHEN c.preferred_channel = 'email' AND c.email <> '' AND c.email_opted_out_at IS NULL THEN 'email'
           WHEN c.phone <> '' AND c.sms_opted_out_at IS NULL THEN 'sms'
           WHEN c.email <> '' AND c.email_opted_out_at IS NULL THEN 'email'
         END AS channel,
         timezone(p.timezone, %(at)s::timestamptz) AS local_now,
         sm.prompts, sm.no_data_reminders, sm.no_data_days, sm.sync_grace_hours, sm.relink_reminders,
         sm.low_battery_reminders, sm.quiet_start, sm.quiet_end, sm.max_per_day, sm.max_per_week,
         pr.duration_days, pr.day_end
  FROM cohorts_participant p
  JOIN messaging_studymessaging sm ON sm.study_id = p.study_id
  JOIN proto pr ON pr.study_id = p.study_id
  JOIN cohorts_participantcontact c ON c.participant_id = p.id
  WHERE p.study_id = ANY(%(p_study)s::bigint[]) AND sm.live_since <= %(at)s
    AND p.status IN ('linked', 'active') AND p.withdrawn_at IS NULL AND c.reminders_opt_in
    AND NOT CASE  -- quiet hours, participant-local: nobody in them is considered further
      WHEN sm.quiet_start = sm.quiet_end THEN false
      WHEN sm.quiet_start < sm.quiet_end
        THEN timezone(p.timezone, %(at)s::timestamptz)::time >= sm.quiet_start
         AND timezone(p.timezone, %(at)s::timestamptz)::time < sm.quiet_end
      ELSE timezone(p.timezone, %(at)s::timestamptz)::time >= sm.quiet_start
        OR timezone(p.timezone, %(at)s::timestamptz)::time < sm.quiet_end
    END
), awake AS (
  SELECT b.*, b.local_now::date AS today, b.local_now::time AS now_t,
         timezone(b.tz, %(at)s::timestamptz - make_interval(hours => b.sync_grace_hours)) AS graced,
         lr.measured_at AS last_reading_at, cf.last_sync_at, cf.low_device, cf.low_since
  FROM base b
  LEFT JOIN LATERAL (
    SELECT r.measured_at FROM measurements_bloodpressurereading r
    WHERE r.participant_id = b.pid AND r.measured_at <= %(at)s ORDER BY r.measured_at DESC LIMIT 1
  ) lr ON true
  LEFT JOIN LATERAL (
    -- The last sync of any cuff, and the cuff of the latest low-battery episode.
    SELECT max(d.last_session_at) AS last_sync_at,
           (array_agg(d.device_id ORDER BY d.battery_low_since DESC, d.device_id)
              FILTER (WHERE d.battery = 'low' AND d.battery_low_since IS NOT NULL))[1] AS low_device,
           max(d.battery_low_since) FILTER (WHERE d.battery = 'low') AS low_since
    FROM measurements_device d WHERE d.participant_id = b.pid
  ) cf ON true
  WHERE b.channel IS NOT NULL
), st AS (
  SELECT a.*,
    (a.start_date IS NOT NULL AND a.today >= a.start_date
      AND (a.duration_days IS NULL OR a.today < a.start_date + a.duration_days)
      AND (a.end_date IS NULL OR a.today <= a.end_date)) AS on_today,
    ((a.end_date IS NOT NULL AND a.today > a.end_date)
      OR (a.start_date IS NOT NULL AND a.duration_days IS NOT NULL
          AND a.today >= a.start_date + a.duration_days)) AS over,
    CASE WHEN a.day_end <> '00:00' AND a.graced::time >= a.day_end THEN a.graced::date
         ELSE a.graced::date - 1 END AS d,
    GREATEST(a.start_date, timezone(a.tz, a.last_reading_at)::date + 1) AS first_missing
  FROM awake a
), nd AS (
  SELECT st.*, st.d - st.first_missing + 1 AS missed,
         timezone(st.tz, (st.d + CASE WHEN st.day_end = '00:00' THEN 1 ELSE 0 END) + st.day_end) AS closed
  FROM st
  WHERE st.no_data_reminders AND st.link_status = 'active'
    AND st.start_date IS NOT NULL AND st.d >= st.start_date
    AND (st.duration_days IS NULL OR st.d < st.start_date + st.duration_days)
    AND (st.end_date IS NULL OR st.d <= st.end_date)
    AND st.d - st.first_missing + 1 >= st.no_data_days
), cand AS (
  -- Each candidate carries what the answer needs: no join back to st (its row estimate is poor, and
  -- a nested loop over it is quadratic in the cohort).
  SELECT st.pid, st.study_id, st.code, st.channel, st.language, st.today, st.max_per_day, st.max_per_week,
         'prompt' AS reason, 'prompt:' || to_char(st.today, 'YYYY-MM-DD') || ':' || w.name AS dedupe_key,
         4 AS prio, w.name AS window, w.ws, w.we, NULL::int AS days
  FROM st JOIN win w ON w.study_id = st.study_id
  WHERE st.prompts AND st.on_today AND st.now_t >= w.ws AND (w.we = '00:00' OR st.now_t < w.we)
    AND (st.last_reading_at IS NULL OR st.last_reading_at < timezone(st.tz, st.today + w.ws))
  UNION ALL
  SELECT nd.pid, nd.study_id, nd.code, nd.channel, nd.language, nd.today, nd.max_per_day, nd.max_per_week,
         k.reason, k.reason || ':' || to_char(nd.first_missing, 'YYYY-MM-DD'), 2, '', NULL, NULL, nd.missed
  FROM nd CROSS JOIN LATERAL (
    SELECT CASE WHEN nd.last_sync_at >= nd.closed THEN 'no_data' ELSE 'sync_nudge' END AS reason
  ) k
  UNION ALL
  SELECT st.pid, st.study_id, st.code, st.channel, st.language, st.today, st.max_per_day, st.max_per_week,
         'relink', 'relink:' || to_char(st.link_status_changed_at AT TIME ZONE 'UTC', %(stamp)s),
         1, '', NULL, NULL, NULL
  FROM st
  WHERE st.relink_reminders AND NOT st.over AND st.link_status IN ('needs_reauth', 'revoked')
    AND st.link_status_changed_at IS NOT NULL
  UNION ALL
  SELECT st.pid, st.study_id, st.code, st.channel, st.language, st.today, st.max_per_day, st.max_per_week,
         'low_battery',
         'low_battery:' || left(st.low_device, 64) || ':'
           || to_char(st.low_since AT TIME ZONE 'UTC', %(stamp)s),
         3, '', NULL, NULL, NULL
  FROM st WHERE st.low_battery_reminders AND NOT st.over AND st.low_device IS NOT NULL
), ranked AS (
  -- Not in the log yet (one index probe each), ranked per participant, most important first.
  SELECT c.*, row_number() OVER (PARTITION BY c.pid ORDER BY c.prio, c.dedupe_key COLLATE "C") AS rn
  FROM cand c
  WHERE NOT EXISTS (
    SELECT 1 FROM messaging_message m WHERE m.participant_id = c.pid AND m.dedupe_key = c.dedupe_key
  )
)
SELECT r.pid, r.study_id, r.code, r.reason, r.dedupe_key, r.channel, r.language, r.today,
       r.window, r.ws, r.we, r.days
FROM ranked r
CROSS JOIN LATERAL (  -- the caps: this participant's reminders of the day and the week (index)
  SELECT count(*) FILTER (WHERE m.local_day = r.today) AS day_n, count(*) AS week_n
  FROM messaging_message m
  WHERE m.participant_id = r.pid AND m.local_day > r.today - %(cap_days)s AND m.local_day <= r.today
    AND m.reason = ANY(%(capped)s::text[])
) s
WHERE r.rn + s.day_n <= r.max_per_day AND r.rn + s.week_n <= r.max_per_week
ORDER BY r.pid, r.prio, r.dedupe_key COLLATE "C"
"""


def decide_sql(*, at: dt.datetime, windows: dict[int, StudyWindows]) -> list[Candidate]:
    """Everything due at ``at`` for the live studies in ``windows``: one query."""
    flat = [(sid, w) for sid, sw in windows.items() for w in sw.windows]
    params: dict[str, Any] = {
        "at": at,
        "w_study": [sid for sid, _ in flat],
        "w_name": [w.name for _, w in flat],
        "w_start": [w.start for _, w in flat],
        "w_end": [w.end for _, w in flat],
        "p_study": list(windows),
        "p_duration": [sw.duration_days for sw in windows.values()],
        "p_day_end": [sw.day_end for sw in windows.values()],
        "cap_days": CAP_DAYS,
        "stamp": 'YYYYMMDD"T"HH24MISS.US',  # candidates.stamp
        "capped": list(CAPPED),
    }
    with connection.cursor() as cursor:
        cursor.execute(DECIDE, params)
        rows = cursor.fetchall()
    return [
        Candidate(
            participant_id=pid,
            study_id=study_id,
            code=code,
            reason=reason,
            dedupe_key=key,
            channel=channel,
            language=language,
            local_day=today,
            window=window or "",
            window_start=ws,
            window_end=we,
            days=days,
        )
        for pid, study_id, code, reason, key, channel, language, today, window, ws, we, days in rows
    ]
