"""A bounded load test: 20,000 requests over four keep-alive connections, every one answered correctly.

Concurrent requests share forward passes (micro-batching), and a matrix product's last float32 bit depends on the
batch's size, so answers that differ from the reference bytes are compared to a float32 ulp or so.
"""

import threading
import time

import numpy as np
import orjson
from serving_models import sample_rows
from serving_support import KeepAliveClient, ServingServer

CONNECTIONS = 4
REQUESTS_PER_CONNECTION = 5000
TIME_LIMIT_S = 120.0


def test_twenty_thousand_requests_over_four_connections_all_succeed(server: ServingServer) -> None:
    bodies = [orjson.dumps({"inputs": sample_rows(rows)}) for rows in (1, 3, 10)]
    reference = [server.invoke(body).content for body in bodies]
    expected = [np.asarray(orjson.loads(content)["predictions"]) for content in reference]
    outcomes: list[tuple[int, int, int]] = []  # (answered, wrong, transport errors) per connection
    deadline = time.monotonic() + TIME_LIMIT_S

    def client(index: int) -> None:
        answered = wrong = errors = 0
        connection = KeepAliveClient(server.port)
        for n in range(REQUESTS_PER_CONNECTION):
            if time.monotonic() > deadline:
                break
            which = (n + index) % len(bodies)
            try:
                status, content = connection.post(bodies[which])
            except OSError:
                errors += 1
                connection.close()
                connection = KeepAliveClient(server.port)
                continue
            answered += 1
            if status != 200 or (
                content != reference[which]
                and not np.allclose(orjson.loads(content)["predictions"], expected[which], rtol=1e-6, atol=0)
            ):
                wrong += 1
        connection.close()
        outcomes.append((answered, wrong, errors))

    threads = [threading.Thread(target=client, args=(index,)) for index in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes == [(REQUESTS_PER_CONNECTION, 0, 0)] * CONNECTIONS
