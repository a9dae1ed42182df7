"""Report: the daily report (json, md, html), the trends page, the mail and the notifications."""
