"""ministack (pinned 1.5.33) with one correction to its HTTP API data plane, for the deployed
stack (`scripts/dev --cloud`, `scripts/cloud-test`). Run with the ministack venv's Python.

ministack answers every OPTIONS request to an HTTP API itself, before route selection: with no
CorsConfiguration it returns 403 "CORS not configured". API Gateway does that only when the API
has a CORS configuration; without one an OPTIONS request is routed like any other -- to an
`OPTIONS /path` route or `$default` -- which is how this template serves its browser routes'
preflights (on the fallback function) and answers OPTIONS on server routes with 405. The
correction keeps ministack's own answer for APIs that configure CORS. It is applied to the
source of that one function and refuses to start if the source is not the expected one.
"""

import inspect
import sys

from ministack.services import apigateway

OLD = '    if method == "OPTIONS":\n        return _cors_preflight_response('
NEW = '    if method == "OPTIONS" and cors_cfg:\n        return _cors_preflight_response('

source = inspect.getsource(apigateway._handle_execute_in_scope)
if source.count(OLD) != 1:
    sys.exit("ministack_cloud.py: ministack's HTTP API OPTIONS handling changed; review the correction")
exec(compile(source.replace(OLD, NEW), apigateway.__file__, "exec"), apigateway.__dict__)

from ministack.app import main  # noqa: E402

sys.exit(main())
