% rebase('layout.tpl', title=title)
% if matches is not None:
<section class="card">
  <h2>Result</h2>
  % if not matches:
  <p class="error">No face was found in the picture.</p>
  % end
  <ul class="verdicts">
  % for m in matches:
    <li class="verdict {{'ok' if m.accepted else 'rejected'}}">
      % if m.crop_uri:
      <img src="{{m.crop_uri}}" alt="Face">
      % end
      <div>
      % if m.username is None:
        <strong>Nobody is enrolled yet.</strong>
      % elif m.accepted:
        <strong class="match-name">{{m.username}}</strong> — similarity <span class="similarity">{{'%.3f' % m.similarity}}</span>
        (threshold {{'%.3f' % threshold}}): the door would accept this face.
      % else:
        <strong>Unknown</strong> — closest is {{m.username}} with similarity <span class="similarity">{{'%.3f' % m.similarity}}</span>,
        below the threshold {{'%.3f' % threshold}}.
      % end
      % if m.runner_up:
        <br><span class="muted">Next: {{m.runner_up[0]}} ({{'%.3f' % m.runner_up[1]}})</span>
      % end
      </div>
    </li>
  % end
  </ul>
  % if matches and get('liveness'):
  <p class="help">{{liveness}}</p>
  % end
</section>
% end
<section class="card">
  <h2>Upload a photograph</h2>
  <form method="post" action="/recognize" enctype="multipart/form-data">
    <input type="hidden" name="csrf_token" value="{{csrf_token}}">
    <input type="file" name="photo" accept="image/*" required>
    <button type="submit">Who is this?</button>
  </form>
</section>
% if camera:
<section class="card">
  <h2>Current camera picture</h2>
  <form method="post" action="/recognize">
    <input type="hidden" name="csrf_token" value="{{csrf_token}}">
    <input type="hidden" name="camera" value="1">
    <button type="submit">Test the current camera frame</button>
  </form>
</section>
% end
