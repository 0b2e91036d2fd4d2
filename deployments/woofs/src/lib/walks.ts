export function walkMinutes(minutes: number[]): number {
  return minutes.reduce((total, m) => total + m, 0);
}
