from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

MAX_OFFSET = 2**62  # past every row anyway; the database refuses numbers beyond 64 bits


class Pagination(LimitOffsetPagination):
    """`limit` (at most 1,000) and `offset`; numbers too large for the database are clamped, not a 500
    (API fuzzing sent limit=1.9e19 and offset=2**70)."""

    max_limit = 1000

    def get_offset(self, request: Request) -> int:
        return min(super().get_offset(request), MAX_OFFSET)
