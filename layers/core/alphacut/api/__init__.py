"""The HTTP API: API Gateway REST proxy events in, answers out (Powertools event handler).

Routes parse the request, call the pipeline, and shape the answer; errors are mapped to HTTP
statuses by ``alphacut.errors.http_status`` and nowhere else.
"""
