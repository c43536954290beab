import assert from 'node:assert/strict';
suite('deliberate failure (harness check, to be removed)', () => {
  test('fails on purpose', () => {
    assert.equal(1 + 1, 3);
  });
});
