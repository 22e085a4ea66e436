"""The summaryd daemon: drains every client's ring and owns every event file.

Run it as ``summaryd serve`` (or ``python -m summaryd.daemon serve``).  This
package is never imported by the SDK; the SDK starts it as a process.
"""
