"""The retry room: which outcomes are retried, how long to wait, when a call stops.

``_rules`` the verdict on each outcome; ``_loop`` tenacity's retry loop fed by them.
"""
