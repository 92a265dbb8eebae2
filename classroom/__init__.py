"""The classroom's Streamlit glue: who is asking (this browser's cookie token, hashed, and
whether it gave the teacher's passphrase; ``who``), the views of the training queue every
browser shares (a run's status, the queue board, runs a restart cut short) and the
teacher's controls (``queue_views``). The glue every page shares stays in ``ui``.
"""
