"""The service: webhook receivers, the approval API, the job queue's workers.

``diagnose serve`` answers PagerDuty (V3 webhooks) and Alertmanager within milliseconds by only
verifying, mapping and enqueueing; workers (``diagnose worker``, or in-process with ``serve
--workers N``) take jobs from the queue and run the diagnosis, write the findings back to
PagerDuty and Slack and draft postmortems. Humans approve or reject fixes through the
token-protected approval API or in Slack. ``docs/service.md`` is the user's guide.

Modules: ``signing`` (webhook signatures), ``intake`` (payloads → triggers and jobs), ``auth``
(tokens → users), ``jobs`` (what a worker does with each kind of job), ``working`` (the worker
loop, leases and heartbeats), ``telemetry`` (the agent's own metrics), ``app`` (the HTTP
routes), ``commands`` (the ``serve`` and ``worker`` commands), ``attaching`` (``kubectl diagnose
--incident``: an incident's run found in the queue and followed), ``slack`` (``POST
/slack/interactions``: Slack's buttons and modals, signed), ``slackblocks`` (the findings message
and the modals in Block Kit, pure), ``slackjobs`` (the ``slack_post`` and ``slack_decision``
jobs, and the posting ``diagnose run`` shares). Slack is reached through ``ports.Chat``
(``docs/slack.md``).
"""
