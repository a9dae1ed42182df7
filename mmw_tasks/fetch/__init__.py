"""Fetch: each server's rotated log files for a day, local or pulled over SFTP into the raw area,
and the manifest that remembers what each file holds."""
