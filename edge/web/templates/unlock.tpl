% rebase('layout.tpl', title=title)
% if done:
<p class="note">The door was unlocked; the access log records it under your name.</p>
% elif not available:
<p class="muted">The door service is not running, so the door cannot be opened from here.</p>
% else:
<form method="post" action="/unlock" class="card">
  <input type="hidden" name="csrf_token" value="{{csrf_token}}">
  <p>Open the door now? It locks again after the configured unlock time. This is logged with your name and
  this computer's address.</p>
  % if get('error'):
  <p class="error">{{error}}</p>
  % end
  <label>Your password <input type="password" name="password" autocomplete="current-password" required></label>
  <input type="hidden" name="confirm" value="yes">
  <button type="submit" class="danger">Yes, unlock the door</button>
  <a href="/home">Cancel</a>
</form>
% end
