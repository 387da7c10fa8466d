% rebase('layout.tpl', title=title)
<p>{{target.username}} has {{count}} face template{{'' if count == 1 else 's'}}.</p>
% if verdicts is not None:
<p class="{{'note' if stored else 'error'}}">{{stored}} of {{len(verdicts)}} photograph{{'' if len(verdicts) == 1 else 's'}} enrolled.</p>
% if get('advice'):
<p class="error turn-advice">{{advice}}</p>
% end
<ul class="verdicts">
  % for v in verdicts:
  <li class="verdict {{'ok' if v.ok else 'rejected'}}">
    % if v.crop_uri:
    <img src="{{v.crop_uri}}" alt="Face found in {{v.name}}">
    % end
    <div><strong>{{v.name}}</strong>:
      % if v.ok and v.pending:
      waits for an administrator: {{v.pending}}
      % elif v.ok:
      accepted{{' (quality %.2f)' % v.quality if v.quality is not None else ''}}
      % for w in v.warnings:
      <span class="warning">warning: {{w}}</span>
      % end
      % else:
      rejected: {{'; '.join(v.reasons)}}
      % end
    </div>
  </li>
  % end
</ul>
% end
<section class="card">
  <h2>Upload photographs</h2>
  <p class="muted">Several clear, front-facing photographs of {{target.username}} alone, in different light.</p>
  <form method="post" action="/users/{{target.id}}/enrol" enctype="multipart/form-data">
    <input type="hidden" name="csrf_token" value="{{csrf_token}}">
    <input type="file" name="photos" accept="image/*" multiple required>
    <button type="submit">Check and enrol</button>
  </form>
</section>
<section class="card">
  <h2>Use the door camera</h2>
  % if camera:
  <p class="muted">Stand in front of the camera and turn your head slowly a little left, right, up and down while
  the door's green and red lights alternate (after a short chirp): frames are taken over about three seconds and
  the most different good ones are kept.</p>
  <form method="post" action="/users/{{target.id}}/enrol/camera">
    <input type="hidden" name="csrf_token" value="{{csrf_token}}">
    <button type="submit">Capture from the camera</button>
  </form>
  % else:
  <p class="muted">The door service is not running, so the camera cannot be used.</p>
  % end
</section>
