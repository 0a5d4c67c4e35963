"""A reply order survives the job row and the queue: every field, as JSON."""

from __future__ import annotations

import json
import uuid
from dataclasses import fields

from kibitz.services.chat.models import utcnow
from kibitz.services.chat.replies.orders import ReplyOrder, TurnStep


def test_every_field_of_an_order_goes_through_its_payload_and_back() -> None:
    order = ReplyOrder(
        message_id=uuid.uuid4(),
        user_message_id=uuid.uuid4(),
        chat_id=uuid.uuid4(),
        tenant_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        agent_id=uuid.uuid4(),
        context=[{"role": "user", "content": "hello"}],
        request_id="req-1",
        created_at=utcnow(),
        delegates=(uuid.uuid4(), uuid.uuid4()),
        depth=1,
        parent_id=uuid.uuid4(),
        name="Critic",
        rest=(TurnStep(message_id=uuid.uuid4(), agent_id=uuid.uuid4(), name="Scribe"),),
    )
    payload = json.loads(json.dumps(order.to_payload()))
    assert set(payload) == {field.name for field in fields(ReplyOrder)}
    assert ReplyOrder.from_payload(payload) == order
