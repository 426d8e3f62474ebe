"""The transparency API: compliance status, impact ratios and audits, reports and human reviews over HTTP, per tenant.

``app.create_app(url)`` builds the FastAPI application; ``fairness-pipeline api`` serves it with uvicorn. Routes call
the store (``store/api_*.py``) and the domain (``alerts.review``, ``reports.publish``); no SQL here.
"""
